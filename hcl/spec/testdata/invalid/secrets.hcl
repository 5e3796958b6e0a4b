dag "bad_secrets" {
  task "t" {
    command = "/bin/sh"
    secret "DB-PASSWORD" {
      path = "dagflow/etl/db"
      key  = "password"
    }
    secret "A" {
      path = "/dagflow/etl/db"
      key  = "password"
    }
    secret "B" {
      path = "dagflow/etl db"
      key  = "pass-word"
    }
    secret "C" {
      path = "nomad/other"
      key  = "k"
      file = "../outside"
    }
    secret "A" {
      path = "dagflow/etl/db"
      key  = "password"
    }
    secret "D" {
      key = "password"
    }
    secret "E" {
      path = "dagflow/${run.id}"
      key  = "k"
    }
    template {
      destination = "secrets/a.conf"
    }
    template {
      data        = "x"
      destination = "/etc/passwd"
      change_mode = "reload"
    }
    template {
      data        = "y"
      destination = "secrets/b.conf"
    }
    template {
      data        = "z"
      destination = "secrets/b.conf"
    }
    vault {
      policies = ["etl"]
    }
    vault {
      role = "etl"
    }
  }
}
