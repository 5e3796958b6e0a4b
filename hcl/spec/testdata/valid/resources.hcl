# Devices, memory_max, cores, artifacts and volumes, as Nomad's job specification spells them.
queue "accel" {
  node_pool = "gpu"
  volume "datasets" {
    type      = "host"
    source    = "datasets"
    read_only = true
  }
}

dag "train" {
  param "version" {
    default = "1.2.0"
  }

  defaults {
    resources {
      cpu        = 500
      memory     = 1024
      memory_max = 4096
    }
  }

  task "fit" {
    queue   = "accel"
    driver  = "exec"
    command = "python3"
    args    = ["local/train.py"]
    resources {
      cores = 2
      device "nvidia/gpu" {
        count = 2
        constraint {
          attribute = "${device.attr.memory}"
          operator  = ">="
          value     = "16 GiB"
        }
        affinity {
          attribute = "${device.model}"
          value     = "Tesla V100"
          weight    = 75
        }
      }
      device "fpga" {}
    }

    artifact {
      source      = "https://pypi.example.com/trainer-${params.version}.whl"
      destination = "local/wheels"
      mode        = "file"
      options     = { checksum = "sha256:0123" }
      headers     = { X-Run = "${run.id}" }
    }
    artifact {
      source = "git::https://github.com/example/models"
    }

    volume "scratch" {
      type            = "csi"
      source          = "scratch-${each.key}"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }
    for_each = ["a"]

    volume_mount {
      volume      = "datasets"
      destination = "/datasets"
      read_only   = true
    }
    volume_mount {
      volume      = "scratch"
      destination = "/scratch"
    }
  }

  task "report" {
    command = "/bin/true"
    resources {
      cpu = 200
    }
  }
}
