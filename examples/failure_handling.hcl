# What happens when a task fails, and how trigger rules react to it.
#
#   prepare -> load -> report      all_success (the default): runs only if load succeeded
#              load -> alert       one_failed: runs only if load failed
#              load -> cleanup     all_done: runs once load is done, whatever its outcome
#
# The DAG has no schedule, so it only runs when triggered by hand; it does not produce a
# failure every day. With the default param value, load fails twice (its first attempt and
# its one retry), report is upstream_failed, alert and cleanup run, and the run fails.
# Trigger it with fail=false to see the other path: load and report succeed, alert is skipped,
# cleanup runs, and the run succeeds.
#
# A run's state comes from its leaf tasks (those nothing depends on), as in Airflow: it fails
# when one of them failed or is upstream_failed. Here report is a leaf, so the run fails when
# load did. Had cleanup been the only leaf, its success would have made the run succeed.

dag "failure_handling" {
  description = "Demonstrates retries and the trigger rules all_done and one_failed."
  tags        = ["example"]

  param "fail" {
    type        = bool
    default     = true
    description = "Whether load fails. Set it to false to see the success path."
  }

  defaults {
    command = "/bin/sh"
  }

  task "prepare" {
    args = ["-c", "echo \"prepare a scratch table for ${run.id}\""]
  }

  # Fails on purpose when fail is true. retries = 1 means two attempts in all, 5 seconds apart.
  task "load" {
    depends_on  = ["prepare"]
    retries     = 1
    retry_delay = "5s"
    args        = ["-c", "echo \"load: attempt ${task.try}\"; if [ \"${params.fail}\" = true ]; then echo 'load: failing on purpose'; exit 1; fi"]
  }

  # all_success (the default): runs only if load succeeded. When load failed it never runs and
  # is upstream_failed, which fails the run.
  task "report" {
    depends_on = ["load"]
    args       = ["-c", "echo report"]
  }

  # one_failed: runs as soon as an upstream task has failed; skipped when none failed.
  task "alert" {
    depends_on   = ["load"]
    trigger_rule = "one_failed"
    args         = ["-c", "echo \"ALERT: ${dag.name} run ${run.id}: load failed\""]
  }

  # all_done: runs once every upstream task is finished, whatever its outcome.
  task "cleanup" {
    depends_on   = ["load"]
    trigger_rule = "all_done"
    args         = ["-c", "echo \"drop the scratch table of ${run.id}\""]
  }
}
