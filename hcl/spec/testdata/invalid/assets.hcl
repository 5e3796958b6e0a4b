dag "producer" {
  task "load" {
    command = "true"
    outlets = ["warehouse.orders", "bad name", "warehouse.orders"]
  }
}

dag "unknown_function" {
  schedule_on = every("warehouse.orders")
  task "t" { command = "true" }
}

dag "empty" {
  schedule_on = any()
  task "t" { command = "true" }
}

dag "empty_list" {
  schedule_on = []
  task "t" { command = "true" }
}

dag "bad_element" {
  schedule_on = all("raw.a", 3, "s3:/x y")
  task "t" { command = "true" }
}

dag "required_param" {
  schedule_on = ["warehouse.orders"]
  param "day" {
    required = true
  }
  task "t" { command = "echo ${params.day}" }
}
