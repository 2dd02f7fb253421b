"""The daily partitioning every dated table shares, so one day lines up across layers."""

from dagster import DailyPartitionsDefinition

from podrec.settings import load_settings

daily_partitions = DailyPartitionsDefinition(start_date=load_settings().partitions_start)
