# What happens when a task fails, and how trigger rules react to it.
#
#   prepare -> flaky -> report                  (all_success: never runs when flaky failed)
#                    -> alert -> summary        (one_failed, then none_failed)
#   report, summary -> cleanup                  (all_done: runs whatever happened)
#
# The DAG has no schedule, so it only runs when triggered by hand (a manual run); it does not
# produce a failure every day. With the default param value flaky fails twice (the first
# attempt and its one retry), alert and summary run, report never runs, and cleanup runs last.
# Trigger it with fail = false to see the other path: report runs, alert is skipped, summary
# still runs (a skipped upstream is not a failed one), and cleanup runs.

dag "failure_handling" {
  description = "Demonstrates retries and the trigger rules all_done, one_failed and none_failed."
  tags        = ["example"]

  param "fail" {
    type        = bool
    default     = true
    description = "Whether the flaky task fails. Set it to false to see the success path."
  }

  defaults {
    command = "/bin/sh"
  }

  task "prepare" {
    args = ["-c", "echo prepare"]
  }

  # Fails on purpose. retries = 1 means two attempts in all, 5 seconds apart.
  task "flaky" {
    depends_on  = ["prepare"]
    retries     = 1
    retry_delay = "5s"
    args        = ["-c", "echo \"flaky: attempt ${task.try}\"; case \"${params.fail}\" in true) echo 'failing on purpose'; exit 1 ;; esac"]
  }

  # all_success (the default): runs only if flaky succeeded; otherwise it never runs.
  task "report" {
    depends_on = ["flaky"]
    args       = ["-c", "echo report"]
  }

  # one_failed: runs as soon as an upstream task has failed; skipped if none failed.
  task "alert" {
    depends_on   = ["flaky"]
    trigger_rule = "one_failed"
    args         = ["-c", "echo \"ALERT: ${dag.name} run ${run.id} has a failed task\""]
  }

  # none_failed: runs if no upstream task failed, so also when alert was skipped.
  task "summary" {
    depends_on   = ["alert"]
    trigger_rule = "none_failed"
    args         = ["-c", "echo summary"]
  }

  # all_done: runs once every upstream task is finished, whatever its outcome.
  task "cleanup" {
    depends_on   = ["report", "summary"]
    trigger_rule = "all_done"
    args         = ["-c", "echo cleanup"]
  }
}
