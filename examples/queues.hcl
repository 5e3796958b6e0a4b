# Queues route tasks to Nomad nodes and bound how many of their tasks run at once.
#
# A queue named "default" always exists, even undeclared: any node of the "default" node pool,
# in any datacenter, unbounded. Tasks that name no queue use it. Declaring queue "default"
# replaces it.
#
# The "reports" queue below runs only on nodes that list "reports" in their "queues" node
# meta, set in the Nomad client's configuration:
#
#   client {
#     meta {
#       queues = "reports"   # or "reports,gpu": a comma-separated set
#     }
#   }
#
# The Nomad node of `make dev` has exactly that meta, so it serves both queues. On a node
# without it, the reports tasks would wait, and `dagflow plan` warns that no ready node
# matches the queue.

queue "reports" {
  description = "Report builders: at most two at a time, on the nodes whose meta lists reports."
  node_pool   = "default"
  datacenters = ["dc1"]
  max_running = 2 # across every DAG whose tasks use this queue

  # A Nomad constraint. "${meta.queues}" is Nomad's interpolation, not dagflow's: a string
  # that refers only to attr, node or meta is passed to Nomad as written.
  constraint {
    attribute = "${meta.queues}"
    operator  = "set_contains"
    value     = "reports"
  }
}

dag "queued_reports" {
  description = "Four report tasks on the reports queue, which runs two at a time."
  tags        = ["reports", "example"]

  schedule   = "@hourly"
  start_date = "2026-11-20"
  # catchup defaults to "none": the first run is for the hour under way when the DAG is
  # applied, and starts when that hour ends.

  defaults {
    queue   = "reports"
    command = "/bin/sh"
  }

  task "report" {
    for_each = ["sales", "stock", "returns", "traffic"]
    args     = ["-c", "echo \"report ${each.key} on queue reports, node $(hostname), started $(date -u +%H:%M:%S)\"; sleep 2"]
  }

  # Overrides the defaults block: this one runs on the default queue.
  task "notify" {
    depends_on = ["report"]
    queue      = "default"
    args       = ["-c", "echo \"all reports for ${run.logical_date} are done\""]
  }
}
