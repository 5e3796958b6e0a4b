dag "sensors" {
  sensor "orders_ready" {
    poke_interval = "30s"
    timeout       = "6h"
    soft_fail     = true
    consul_key {
      key   = "jobs/orders/${run.logical_date}"
      value = "ready"
    }
  }

  sensor "api_up" {
    depends_on   = ["orders_ready"]
    trigger_rule = "none_failed"
    http {
      url     = "https://api.example.com/ready"
      headers = { Accept = "application/json" }
    }
  }

  sensor "creds" {
    nomad_variable { path = "nomad/jobs/orders" }
  }

  sensor "db" {
    consul_service { name = "postgres" }
  }

  sensor "extract_done" {
    dag_run {
      dag  = "nightly_etl"
      task = "extract"
    }
  }

  sensor "partition" {
    poke_interval = "5m"
    command {
      command = "/bin/sh"
      args    = ["-c", "hdfs dfs -test -e /data/${run.logical_date} || exit 75"]
      retries = 2
    }
  }

  task "load" {
    command    = "/bin/true"
    depends_on = ["api_up", "creds", "db", "extract_done", "partition"]
  }
}
