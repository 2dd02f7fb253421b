from pathlib import Path

import pytest

from podrec.lake.spark import SetupMissingError, spark_conf
from podrec.settings import load_settings


def test_conf_has_delta_jars_and_overrides(tmp_path: Path) -> None:
    jars = tmp_path / "jars" / "spark"
    jars.mkdir(parents=True)
    (jars / "delta-spark_4.2_2.13-4.4.0.jar").touch()
    (jars / "spark-sql-kafka-0-10_2.13-4.2.0.jar").touch()
    s = load_settings(
        cache={"dir": str(tmp_path)},
        spark={
            "master": "spark://cluster:7077",
            "conf": {"spark.executor.memory": "8g", "spark.sql.shuffle.partitions": "200"},
        },
    )
    conf = spark_conf(s)
    assert conf["spark.master"] == "spark://cluster:7077"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.jars"].split(",") == sorted(str(p) for p in jars.iterdir())
    assert conf["spark.sql.shuffle.partitions"] == "200"  # PODREC_SPARK_CONF wins
    assert "spark.driver.host" not in conf  # a cluster driver must be reachable
    local = spark_conf(load_settings(cache={"dir": str(tmp_path)}))
    assert "spark.checkpoint.dir" not in local  # local[*] has no executor to lose


def test_missing_jars_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SetupMissingError, match="make setup"):
        spark_conf(load_settings(cache={"dir": str(tmp_path)}))


def test_standalone_master_on_loopback_is_reached_over_loopback_and_checkpoints_in_the_lake(
    tmp_path: Path,
) -> None:
    s = load_settings(cache={"dir": str(tmp_path)}, lake={"uri": "s3a://bucket/lakehouse/"},
                      spark={"master": "spark://127.0.0.1:7077"})  # fmt: skip
    conf = spark_conf(s, require_jars=False)
    assert conf["spark.driver.host"] == "127.0.0.1"  # the workers on this machine reach the driver here
    assert conf["spark.checkpoint.dir"] == "s3a://bucket/lakehouse/_checkpoints"
    pinned = spark_conf(s.with_(spark={"checkpoint_dir": "hdfs:///podrec/checkpoints"}), require_jars=False)
    assert pinned["spark.checkpoint.dir"] == "hdfs:///podrec/checkpoints"


def test_an_s3_api_lake_reaches_its_endpoint_from_spark_and_delta_rs(tmp_path: Path) -> None:
    from podrec.lake.object_store import object_store_environment

    (tmp_path / "jars" / "s3a").mkdir(parents=True)
    (tmp_path / "jars" / "s3a" / "hadoop-aws-3.5.0.jar").touch()
    (tmp_path / "jars" / "s3a" / "bundle-2.35.4.jar").touch()
    lake = {"uri": "s3a://podrec/lakehouse", "s3_endpoint": "http://127.0.0.1:18333"}
    s = load_settings(cache={"dir": str(tmp_path)}, spark={"master": "spark://127.0.0.1:7077"}, lake=lake)
    conf = spark_conf(s, require_jars=False)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:18333"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    # From the local disk on both sides, never shipped through spark.jars.
    assert conf["spark.executor.extraClassPath"] == conf["spark.driver.extraClassPath"]
    assert "hadoop-aws" in conf["spark.driver.extraClassPath"] and "hadoop-aws" not in conf["spark.jars"]
    env = object_store_environment(s.lake)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:18333" and env["AWS_ALLOW_HTTP"] == "true"
    assert not any("SECRET" in name or "KEY" in name for name in env)  # credentials stay the operator's
    # AWS itself: no endpoint, nothing to set; a local lake: no s3a at all.
    aws = s.with_(lake={"s3_endpoint": None})
    assert object_store_environment(aws.lake) == {} and "spark.hadoop.fs.s3a.endpoint" not in spark_conf(
        aws, require_jars=False
    )
    assert "spark.driver.extraClassPath" not in spark_conf(
        load_settings(cache={"dir": str(tmp_path)}), require_jars=False
    )


def test_missing_hadoop_aws_says_how_to_fix(tmp_path: Path) -> None:
    from podrec.lake.spark import s3a_classpath

    s = load_settings(cache={"dir": str(tmp_path)}, lake={"uri": "s3a://podrec/lakehouse"})
    with pytest.raises(SetupMissingError, match=r"hadoop-aws.*make setup"):
        s3a_classpath(s)


def test_a_spark_secret_authenticates_every_driver_and_stays_out_of_a_shown_config(tmp_path: Path) -> None:
    s = load_settings(cache={"dir": str(tmp_path)},
                      spark={"master": "spark://127.0.0.1:7077", "auth_secret": "s3cr3t-value"})  # fmt: skip
    conf = spark_conf(s, require_jars=False)
    assert (conf["spark.authenticate"], conf["spark.authenticate.secret"]) == ("true", "s3cr3t-value")
    shown = spark_conf(s, require_jars=False, with_secret=False)  # a Dagster resource's config
    assert shown["spark.authenticate"] == "true" and "s3cr3t-value" not in repr(shown)
    unset = spark_conf(load_settings(cache={"dir": str(tmp_path)}), require_jars=False)
    assert not any(key.startswith("spark.authenticate") for key in unset)  # the local profile pays nothing
