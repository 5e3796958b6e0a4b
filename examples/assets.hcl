# Data-aware scheduling: a task declares the assets it updates (outlets), and a DAG scheduled
# on assets (schedule_on) runs when they were updated, instead of, or besides, a cron schedule.
#
# Tasks: orders_load.load updates warehouse.orders -> orders_report runs, once per update
#
# An asset is a name ("warehouse.orders") or a URI ("s3://lake/orders/"). Every successful try
# of a task with outlets records an asset event carrying the try's outputs. Producers outside
# dagflow record theirs with `dagflow asset emit warehouse.orders` (or POST
# /v1/assets/warehouse.orders/events). `dagflow asset list` and the UI's Assets page show each
# asset's producers, consumers and recent events.

dag "orders_load" {
  description = "Load the day's orders into the warehouse; trigger it to update warehouse.orders."
  tags        = ["example"]

  task "load" {
    command = "/bin/sh"
    args    = ["-c", "echo loading orders; echo '{\"rows\": 120}' > \"$DAGFLOW_OUTPUT\""]
    outlets = ["warehouse.orders"]
  }
}

dag "orders_report" {
  description = "Report on the orders each time the warehouse has new ones."
  tags        = ["example"]

  # A list means all of them; all(...) and any(...) combine assets, as Airflow's & and |:
  #   schedule_on = all("warehouse.orders", any("crm.customers", "crm.vendors"))
  schedule_on = ["warehouse.orders"]

  task "report" {
    command = "/bin/sh"
    # run.asset_events is the JSON list of the events that started the run, each with the
    # asset, its sequence number, the producing DAG, run and task, and the task's outputs.
    args = ["-c", "echo \"report on: $EVENTS\""]
    env  = { EVENTS = "${run.asset_events}" }
  }
}
