queue "shared" {
  volume "data" {
    source = "data"
  }
}

dag "resources" {
  defaults {
    resources {
      memory_max = 200
    }
  }

  task "a" {
    command = "/bin/true"
    resources {
      cpu    = 100
      cores  = 2
      memory = 100
      device "nvidia//gpu" {}
      device "gpu" {
        count = 0
      }
      device "gpu" {}
      device "fpga" {
        constraint {
          attribute = "${device.attr.memory}"
          operator  = "distinct_hosts"
        }
        affinity {
          attribute = "${device.model}"
          weight    = 0
        }
      }
    }
  }

  task "b" {
    queue   = "shared"
    driver  = "exec"
    command = "/bin/true"
    resources {
      memory = 500
    }
    artifact {
      source = ""
      mode   = "files"
    }
    artifact {
      destination = "local/${dag.nme}"
    }
    volume "data" {
      source = "other"
    }
    volume "csi" {
      type   = "csi"
      source = "ebs-1"
    }
    volume "nfs" {
      type   = "nfs"
      source = "x"
    }
    volume "ro" {
      source      = "ro"
      access_mode = "single-node-reader-only"
    }
    volume_mount {
      volume      = "dta"
      destination = "/data"
    }
  }

  task "c" {
    command = "/bin/true"
    volume "v" {
      source = "v"
    }
    volume_mount {
      volume      = "v"
      destination = "/v"
    }
  }
}
