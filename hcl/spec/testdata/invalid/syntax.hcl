dag "broken" {
  schedule = "@daily"
  task "a" {
    command = "/bin/true"
