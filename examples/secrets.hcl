# Secrets from Nomad Variables, rendered by Nomad inside the allocation: dagflow never reads
# them, and they are in no job spec, log, API answer or plan.
#
# `make dev` puts the variable this DAG reads (internal/devstack, PutExampleVariables), as an
# operator would:
#
#   nomad var put dagflow/examples/warehouse user=loader password=... tls_key=...
#
# Tasks: load -> report
dag "warehouse_load" {
  description = "Loads the warehouse with a password and a TLS key from a Nomad Variable."

  defaults {
    command = "/bin/sh"
    # Every task gets the password as $WAREHOUSE_PASSWORD.
    secret "WAREHOUSE_PASSWORD" {
      path = "dagflow/examples/warehouse"
      key  = "password"
    }
  }

  task "load" {
    # A file secret: rendered to secrets/warehouse/tls.key (mode 0600), not the environment.
    secret "tls_key" {
      path = "dagflow/examples/warehouse"
      key  = "tls_key"
      file = "warehouse/tls.key"
    }
    # The escape hatch: a raw Nomad template, here a client config file with two items.
    # {{ }} is Nomad's template language; a literal ${ for Nomad would be written $${.
    template {
      data        = <<-EOT
        {{ with nomadVar "dagflow/examples/warehouse" }}user={{ .user }}
        password={{ .password }}{{ end }}
      EOT
      destination = "secrets/warehouse.conf"
      perms       = "0600"
    }
    # The task checks what it received and prints only what is not secret.
    args = ["-c", <<-EOT
      test -n "$WAREHOUSE_PASSWORD" &&
      test -s secrets/warehouse/tls.key &&
      grep -qx "password=$WAREHOUSE_PASSWORD" secrets/warehouse.conf &&
      echo "loaded as $(sed -n 's/^user=//p' secrets/warehouse.conf)"
    EOT
    ]
  }

  task "report" {
    depends_on = ["load"]
    args       = ["-c", "test -n \"$WAREHOUSE_PASSWORD\" && echo report sent"]
  }
}
