dag "sensors" {
  sensor "no_condition" {
    poke_interval = "10s"
  }

  sensor "two_conditions" {
    consul_key { key = "a" }
    http { url = "https://example.com/ready" }
  }

  sensor "fast" {
    poke_interval = "100ms"
    timeout       = "0s"
    consul_key { key = "/leading/slash" }
  }

  sensor "bad_url" {
    http { url = "ftp://example.com" }
  }

  sensor "bad_dag" {
    dag_run { dag = "no good" }
  }

  sensor "missing_key" {
    consul_key {}
  }

  sensor "no_command" {
    command {
      args = ["-c", "exit 75"]
    }
  }

  task "t" {
    command    = "true"
    depends_on = ["fast", "nope"]
  }
}
