# A classic nightly ETL: extract -> transform -> load, once a day at 02:00 Berlin time, with
# retries. To show a retry, extract fails its first try on purpose, as if the orders API were
# not ready yet; its retry 10 seconds later succeeds, and so does the run.
#
# Scheduling follows Airflow's data intervals. The run that becomes due at 02:00 on
# 24 November processes the interval [2026-11-23 02:00, 2026-11-24 02:00) and has the logical
# date 2026-11-23 02:00 (Europe/Berlin), which renders as 2026-11-23T01:00:00Z.

dag "nightly_etl" {
  description = "Extract yesterday's orders, transform them and load them into the warehouse."
  tags        = ["etl", "example"]

  schedule   = "0 2 * * *"
  timezone   = "Europe/Berlin" # the cron expression is read in this zone, DST included
  start_date = "2026-11-20"    # midnight in the DAG's timezone; the first interval starts at 02:00

  # When the DAG is first applied (or unpaused) after start_date, run only the most recent
  # interval that already ended, not one run per missed night ("all") and not none ("none").
  # So applying it starts one run at once, for last night.
  catchup = "latest"

  max_active_runs = 1 # one night at a time, so loads never overlap

  # Settings every task inherits; a task may override any of them.
  defaults {
    driver  = "raw_exec"
    command = "/bin/sh"
    timeout = "10m" # an attempt running longer than this fails

    # Up to 3 retries after a failed attempt. The wait before a retry starts at 10s and doubles
    # with each try (10s, 20s, 40s), but never beyond 5m.
    retries                   = 3
    retry_delay               = "10s"
    retry_exponential_backoff = true
    max_retry_delay           = "5m"

    # env from defaults is merged with a task's own env, key by key.
    env = {
      LOGICAL_DATE = "${run.logical_date}"
      RUN_ID       = "${run.id}"
    }
  }

  task "extract" {
    # Runtime values (${run.*}, ${task.*}, ${dag.*}, ${params.*}) are filled in for each
    # attempt: ${task.try} is 1 on the first attempt, 2 on the first retry. $${...} is a
    # literal "${...}", here for the shell to expand.
    args = ["-c", <<-EOT
      echo "extract orders from ${run.data_interval_start} to ${run.data_interval_end} (try ${task.try}, logical date $${LOGICAL_DATE})"
      if [ "${task.try}" = 1 ]; then
        echo "orders API not ready yet, failing this try"
        exit 1
      fi
      sleep 1
      echo "extracted 1250 orders"
    EOT
    ]
  }

  task "transform" {
    depends_on = ["extract"]
    args       = ["-c", "echo \"transform orders of $LOGICAL_DATE\"; sleep 1"]
  }

  task "load" {
    depends_on = ["transform"]
    args       = ["-c", "echo \"load into warehouse partition $PARTITION (${dag.name}/${task.name}, try ${task.try})\"; sleep 1"]

    env = {
      PARTITION = "${run.data_interval_start}"
    }
  }
}
