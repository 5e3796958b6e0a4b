# A GPU pipeline on GPU workers: the tasks that train ask Nomad for a GPU and run on the queue
# of the nodes that have one; the others run anywhere.
#
# The "gpu" queue below runs only on nodes whose "queues" node meta lists "gpu" (set it in
# the client's configuration, as queues.hcl shows), and train runs only where Nomad's NVIDIA
# device plugin fingerprinted a healthy "nvidia/gpu". The node of `make dev` is in the queue
# but has no GPU, so a run of this DAG shows what a user sees when Nomad cannot place a task:
# prepare succeeds, and train waits, saying why,
#
#   $ dagflow trigger gpu_train
#   $ dagflow run status gpu_train/RUN_ID
#   TASK     STATE    TRIES  DURATION  EXIT CODE  MESSAGE
#   prepare  success  1      ...
#   train    queued   1      -         -          not placed: no node has the devices asked for (1 node filtered)
#   publish  -        0      -         -          -
#
# as do the API, the UI's run and try pages and the metric dagflow_tries_unplaced.
# `dagflow doctor` fails its queue check: 0 of the queue's nodes have the GPU train asks for.
# The try gives up after queued_timeout (2 minutes here, 10 by default) with that reason.

queue "gpu" {
  description = "Nodes with an NVIDIA GPU, one training task per GPU."
  max_running = 4

  constraint {
    attribute = "${meta.queues}"
    operator  = "set_contains"
    value     = "gpu"
  }
}

dag "gpu_train" {
  description = "Prepare a dataset on any node, train on a GPU node, publish the model anywhere."
  tags        = ["gpu", "example"]
  # No schedule: trigger it.

  task "prepare" {
    command = "/bin/sh"
    args    = ["-c", "echo \"dataset for ${run.logical_date} prepared\""]
  }

  task "train" {
    depends_on     = ["prepare"]
    queue          = "gpu"
    command        = "/bin/sh"
    args           = ["-c", "echo \"training on $NVIDIA_VISIBLE_DEVICES\""]
    queued_timeout = "2m"

    resources {
      cpu        = 500
      memory     = 2048
      memory_max = 4096 # may use up to 4 GiB when the node has memory to spare
      device "nvidia/gpu" {
        count = 1
        constraint {
          attribute = "${device.attr.memory}"
          operator  = ">="
          value     = "8 GiB"
        }
      }
    }
  }

  task "publish" {
    depends_on = ["train"]
    command    = "/bin/sh"
    args       = ["-c", "echo \"model for ${run.logical_date} published\""]
  }
}
