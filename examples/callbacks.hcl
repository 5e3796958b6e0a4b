# Callbacks and deadlines: dagflow tells a webhook when a run fails, when a task is retried,
# and when a run is not done in time.
#
#   extract (retried once) -> load (sleeps 8 s, then fails when fail is true)
#
# With the default param value, the run misses its deadline (done 5 s after it started) while
# load sleeps, then fails: the webhook receives a deadline_missed event, one retry event for
# extract's first try, and a failure event for the run. Each POST carries a JSON payload with
# a delivery_id (the X-Dagflow-Delivery header too) that stays the same when dagflow sends it
# again, so a receiver drops duplicates by it. The run page lists every delivery and how it
# went; GET /v1/deliveries returns them.
#
# Under `make dev` nothing listens on alert_url, so the deliveries are retried with backoff and
# end failed, visible in the UI, the API and dagflow_deliveries_total{result="failed"}. To see
# them arrive, run a receiver on port 8099, such as
#   while true; do printf 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' | nc -l -p 8099 -q 1; done
# or set alert_url (dagflow apply -var alert_url=...).

variable "alert_url" {
  default = "http://127.0.0.1:8099/dagflow"
}

dag "callbacks" {
  description = "Demonstrates on_failure and on_retry webhooks and a deadline."
  tags        = ["example"]

  param "fail" {
    type        = bool
    default     = true
    description = "Whether load fails. Set it to false to see on_success instead of on_failure."
  }

  on_failure {
    webhook {
      url     = var.alert_url
      headers = { "X-Source" = "dagflow-example" }
      # A secret header comes from a Nomad Variable, read at each delivery and never stored:
      # header "Authorization" {
      #   path = "dagflow/hooks"
      #   key  = "token"
      # }
    }
  }
  on_success {
    webhook {
      url = var.alert_url
    }
  }
  on_retry {
    webhook {
      url = var.alert_url
    }
  }

  deadline {
    after_start = "5s"
    on_miss {
      webhook {
        url = var.alert_url
      }
    }
  }

  defaults {
    command = "/bin/sh"
  }

  # Fails its first try, so on_retry fires once.
  task "extract" {
    retries     = 1
    retry_delay = "1s"
    args        = ["-c", "echo \"extract: try ${task.try}\"; test ${task.try} -ge 2"]
  }

  task "load" {
    depends_on = ["extract"]
    args       = ["-c", "sleep 8; if [ \"${params.fail}\" = true ]; then echo 'load: failing on purpose'; exit 1; fi"]
  }
}
