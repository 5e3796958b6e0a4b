dag "orders_producer" {
  task "load" {
    command = "true"
    outlets = ["warehouse.orders", "s3://lake/orders/"]
  }
}

dag "orders_report" {
  schedule_on = all("warehouse.orders", any("raw.a", "raw.b"))
  task "report" {
    command = "echo"
    args    = ["${run.asset_events}"]
  }
}

dag "orders_list" {
  schedule    = "@daily"
  start_date  = "2026-01-01"
  schedule_on = ["warehouse.orders"]
  task "t" { command = "true" }
}
