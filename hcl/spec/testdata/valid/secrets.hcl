# Secrets from Nomad Variables, a raw template and a vault block; defaults' secrets are
# inherited and a task's secret of the same name replaces the default's.
dag "secrets" {
  defaults {
    command = "/bin/sh"
    secret "DB_PASSWORD" {
      path = "dagflow/secrets/db"
      key  = "password"
    }
    secret "API_TOKEN" {
      path = "dagflow/secrets/api"
      key  = "token"
    }
  }

  task "load" {
    args = ["-c", "./load"]
    secret "DB_PASSWORD" {
      path = "dagflow/secrets/warehouse"
      key  = "password"
    }
    secret "tls_key" {
      path = "nomad/jobs"
      key  = "tls_key"
      file = "tls/key.pem"
    }
    template {
      data        = <<-EOT
        {{ with nomadVar "dagflow/secrets/db" }}user={{ .user }}{{ end }}
        home=$${HOME}
      EOT
      destination = "secrets/app.conf"
      perms       = "0640"
    }
    vault {
      role        = "etl"
      change_mode = "noop"
      env         = false
    }
  }

  task "report" {
    args       = ["-c", "./report"]
    depends_on = ["load"]
  }
}
