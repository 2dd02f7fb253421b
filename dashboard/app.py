"""podrec's live analytics: ``podrec dashboard`` runs this with Streamlit.

Every number comes from the Delta tables through DuckDB (dashboard.queries); nothing here
computes, it only lays out and draws.
"""

from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from dashboard import queries
from podrec.settings import load_settings

REFRESH_S = 30

st.set_page_config(page_title="podrec dashboard", page_icon="🎧", layout="wide")


@st.cache_resource(ttl=REFRESH_S)
def lake() -> queries.Lake:
    # Re-opened every REFRESH_S: a view is pinned to the table version it was opened at.
    return queries.open_dashboard_lake(load_settings().lake.root)


def counts_row(title: str, frame: pd.DataFrame) -> None:
    row = frame.iloc[0]
    st.markdown(f"**{title}**")
    for column, name in zip(
        st.columns(5), ("events", "listeners", "plays", "completes", "likes"), strict=True
    ):
        column.metric(name, f"{int(row[name]):,}")


data = lake()
st.title("podrec — which episodes next?")
st.caption(f"Lake `{data.root}` · refreshed every {REFRESH_S} s · DuckDB over Delta, no Spark")
if data.missing:
    st.warning(
        "Not materialized yet: " + ", ".join(f"`{m}`" for m in data.missing) + ". Run `make demo` (or the "
        "Dagster jobs) and reload."
    )
days = st.sidebar.slider("Days of engagement for arms and top episodes", 1, 28, 7)
if st.sidebar.button("Reload the tables now"):
    st.cache_resource.clear()
    st.rerun()

st.header("Engagement")
if data.has("events"):
    hour, day = queries.activity(data, 1), queries.activity(data, 24)
    newest = hour.iloc[0]["newest"]
    if pd.notna(newest):
        age = datetime.now(UTC) - newest.to_pydatetime()
        st.caption(f"Windows end at the newest event, {newest:%Y-%m-%d %H:%M} UTC ({age.days} d "
                   f"{age.seconds // 3600} h ago).")  # fmt: skip
        counts_row("Last hour", hour)
        counts_row("Last day", day)
        per_hour = queries.events_per_hour(data, 24)
        st.altair_chart(
            alt.Chart(per_hour)
            .mark_bar()
            .encode(x=alt.X("hour:T", title="hour (UTC)"), y=alt.Y("events:Q", stack=True),
                    color=alt.Color("event_type:N", title="event"),
                    tooltip=["hour:T", "event_type", "events"])
            .properties(height=260, title="Events per hour, last 24 hours"),
            use_container_width=True,
        )  # fmt: skip

st.header("A/B arms")
new_days = load_settings().ab.new_episode_days
has_served = data.has("impressions", "events", "episodes")
served = queries.bucket_plays(data, days, new_days) if has_served else pd.DataFrame()
if data.has("recommendations", "engagement", "episodes"):
    arms = queries.arm_metrics(data, days)
    if not served.empty:
        shown = queries.arm_plays(served).rename(columns={"listeners": "listeners_served"})
        arms = arms.merge(shown, on="policy", how="left")
    st.dataframe(
        arms.style.format({"plays_per_impression": "{:.3f}", "new_episode_plays_per_listener": "{:.2f}",
                           "completion": "{:.1%}", "catalog_diversity": "{:.1%}"}, na_rep="-"),
        hide_index=True,
    )  # fmt: skip
if served.empty:
    st.info(f"No lists served in the last {days} days: plays per impression and new-episode plays are "
            "measured on served lists (the API, or `podrec loop`).")  # fmt: skip
else:
    st.caption(f"Last {days} days of served lists; a new episode is played within {new_days} days "
               "of appearing.")  # fmt: skip
    left, right = st.columns(2)
    for column, measure, title in (
        (left, "plays_per_impression", "Plays from lists per impression"),
        (right, "new_episode_plays_per_listener", "New-episode plays per listener"),
    ):
        # One bar per arm and bucket, side by side: a rate does not add up across arms.
        column.altair_chart(
            alt.Chart(served)
            .mark_bar()
            .encode(x=alt.X("bucket:O", axis=alt.Axis(labelOverlap=True)), xOffset="policy:N",
                    y=alt.Y(f"{measure}:Q", stack=None, title=measure.replace("_", " ")),
                    color="policy:N",
                    tooltip=["bucket", "policy", "listeners", "impressions",
                             alt.Tooltip(measure, format=".3f")])
            .properties(height=220, title=f"{title} per bucket, last {days} days"),
            use_container_width=True,
        )  # fmt: skip

st.subheader("The experiment so far: hybrid - als_only")
if data.has("ab"):
    readout = queries.experiment_readout(data)
    if readout.empty:
        st.info("No impressions of the experiment analysed yet: serve lists (the API, or `podrec loop`).")
    else:
        srm = queries.sample_ratio(data).iloc[-1]
        newest = readout["day"].iloc[0]
        shown = readout.drop(columns="day").assign(
            interval=[
                f"[{lo:.3g}, {hi:.3g}]" for lo, hi in zip(readout["low"], readout["high"], strict=True)
            ],
            verdict=[
                "hybrid higher" if lo > 0 else "hybrid lower" if hi < 0 else "no difference shown"
                for lo, hi in zip(readout["low"], readout["high"], strict=True)
            ],
        )
        st.caption(
            f"Up to {newest:%Y-%m-%d}; 95% intervals; per-listener metrics CUPED-adjusted (podrec ab report)."
        )
        st.dataframe(shown.drop(columns=["low", "high"]), hide_index=True, use_container_width=True)
        left, right = st.columns(2)
        ok = srm["p_value"] >= load_settings().ab.srm_p_value
        (left.success if ok else left.error)(
            f"Sample ratio: hybrid {int(srm['hybrid']):,} / als_only {int(srm['als_only']):,} listeners, "
            f"chi-square p = {srm['p_value']:.3g}: "
            + ("no mismatch" if ok else "MISMATCH, do not trust the differences")
        )
        per_day = queries.daily_difference(data, "new_episode_plays")
        right.altair_chart(
            alt.Chart(per_day).mark_errorbar().encode(x="day:T", y=alt.Y("low:Q", title="new-episode plays"),
                                                      y2="high:Q")
            + alt.Chart(per_day).mark_point(filled=True).encode(x="day:T", y="difference:Q")
            + alt.Chart(pd.DataFrame({"zero": [0]})).mark_rule(strokeDash=[4, 4]).encode(y="zero:Q"),
            use_container_width=True,
        )  # fmt: skip

st.header("Top episodes by listener language")
if data.has("engagement", "episodes"):
    top = queries.top_episodes(data, per_language=5, days=days)
    languages = sorted(top["language"].unique())
    if languages:
        chosen = st.selectbox("Language", languages, index=languages.index("en") if "en" in languages else 0)
        mine = top[top["language"] == chosen]
        left, right = st.columns([3, 2])
        left.altair_chart(
            alt.Chart(mine).mark_bar()
            .encode(y=alt.Y("title:N", sort="-x", title=None), x="listeners:Q", color="show:N",
                    tooltip=["title", "show", "episode_language", "listeners"])
            .properties(height=220),
            use_container_width=True,
        )  # fmt: skip
        right.dataframe(mine[["place", "title", "show", "episode_language", "listeners"]], hide_index=True)

st.header("Recommendation scores")
if data.has("recommendations"):
    scores = queries.score_distribution(data)
    left, right = st.columns(2)
    left.altair_chart(
        alt.Chart(scores).mark_bar(opacity=0.7)
        .encode(x=alt.X("score:Q", bin=alt.Bin(maxbins=30)), y=alt.Y("count():Q", stack=None),
                color="policy:N")
        .properties(height=240, title="Score distribution, newest lists"),
        use_container_width=True,
    )  # fmt: skip
    right.altair_chart(
        alt.Chart(scores).mark_line(point=True)
        .encode(x="rank:O", y=alt.Y("mean(score):Q", title="mean score"), color="policy:N")
        .properties(height=240, title="Mean score by rank"),
        use_container_width=True,
    )  # fmt: skip

st.header("Offline evaluation")
if data.has("evaluation"):
    table = queries.evaluation(data)
    if not table.empty:
        st.dataframe(table, hide_index=True)
        main = table[table["cold_start"].isin(["-", "factor"])]
        st.altair_chart(
            alt.Chart(main).mark_bar()
            .encode(x=alt.X("policy:N", sort="-y"), y=alt.Y("ndcg:Q", title="NDCG@K"), color="policy:N",
                    column=alt.Column("protocol:N"))
            .properties(height=220, width=260, title="NDCG by policy"),
        )  # fmt: skip

st.header("Drift reports")
reports = queries.drift_reports(data.root)
if not reports:
    st.info("No Evidently drift reports under the lake's `monitoring/drift_reports` yet.")
for report in reports:
    with st.expander(f"{report.day} / {report.name}"):
        st.markdown(f"`{report.uri}`")
        components.html(report.read_text(), height=600, scrolling=True)
