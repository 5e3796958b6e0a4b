# A sensor as the first step: the DAG waits until a producer outside dagflow says the batch
# is there, without holding a Nomad slot while it waits.
#
# Tasks: wait_for_orders (sensor) -> process
#
# Try it on `make dev`:
#   dagflow trigger orders_arrival -param batch=42
#   consul kv put examples/orders/42/ready yes     # the producer's signal
# Until the key exists the run shows wait_for_orders as scheduled, waiting on
# `Consul key "examples/orders/42/ready" does not exist`; within a poke interval of the put,
# the sensor succeeds and process runs. After 2 hours without the key the sensor fails.

dag "orders_arrival" {
  description = "Process a batch of orders once its producer marked it ready in Consul."
  tags        = ["example"]

  param "batch" {
    type        = string
    default     = "today"
    description = "The batch to wait for: the producer puts examples/orders/BATCH/ready."
  }

  sensor "wait_for_orders" {
    poke_interval = "5s"
    timeout       = "2h"
    consul_key {
      key = "examples/orders/${params.batch}/ready"
    }
  }

  task "process" {
    depends_on = ["wait_for_orders"]
    command    = "/bin/sh"
    args       = ["-c", "echo processing batch ${params.batch}"]
  }
}
