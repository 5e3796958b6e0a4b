# Fan-out and fan-in with for_each: one fetch task per region, a merge that waits for all of
# them, and a per-region publish that waits only for its own region's fetch.
#
# Tasks: fetch[ap], fetch[eu], fetch[us] -> merge
#        fetch[eu] -> publish[eu], fetch[us] -> publish[us], fetch[ap] -> publish[ap]

# Variables and locals belong to the file that declares them. Override a variable with
# -var, e.g. dagflow plan -var 'regions=["eu","us"]' (a list is written as HCL).
variable "regions" {
  type        = list(string)
  default     = ["eu", "us", "ap"]
  description = "Regions to fetch."
}

locals {
  # A map: each key becomes an instance, each value is available as each.value.
  targets = { for r in var.regions : r => "warehouse-${r}" }
}

dag "fan_out" {
  description = "Fetch every region in parallel, merge them, publish each region."
  tags        = ["example"]

  schedule   = "@every 30m"
  start_date = "2026-11-23" # @every counts from start_date: 00:00, 00:30, 01:00, ... UTC
  catchup    = "none"       # the default: the first run is for the next interval to end

  defaults {
    command = "/bin/sh"
  }

  # for_each over a list of strings: one task per element, named fetch[eu], fetch[us], ...
  # each.key and each.value are both the element.
  task "fetch" {
    for_each = var.regions
    args     = ["-c", "echo \"fetch ${each.key} for ${run.data_interval_start}\"; sleep 1"]
  }

  # Depending on the block name "fetch" means every instance of it: this waits for all.
  task "merge" {
    depends_on = ["fetch"]
    args       = ["-c", "echo \"merge ${length(var.regions)} regions\"; sleep 1"]
  }

  # One publish per region, each waiting only for the fetch of the same region.
  # depends_on may use each.key to name a single instance.
  task "publish" {
    for_each   = local.targets
    depends_on = ["fetch[${each.key}]"]
    args       = ["-c", "echo \"publish ${each.key} to ${each.value}\""]
  }
}
