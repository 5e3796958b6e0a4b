# A DAG without a schedule runs only when triggered.
dag "manual_report" {
  description = "Build a report on demand"
  tags        = ["reports", "manual"]

  param "region" {
    type        = string
    default     = "eu"
    description = "Region to report on"
  }

  param "limit" {
    type     = number
    required = true
  }

  task "build" {
    driver  = "docker"
    image   = "alpine:3.20"
    command = "sh"
    args    = ["-c", "echo ${params.region} ${params.limit}"]
    config = {
      network_mode = "host"
      labels       = { run = "${run.id}" }
    }
    timeout = "10m"
  }

  task "publish" {
    depends_on                = ["build"]
    command                   = "/bin/echo"
    args                      = ["published ${dag.name}/${run.id}"]
    retries                   = 3
    retry_delay               = "30s"
    retry_exponential_backoff = true
    max_retry_delay           = "10m"
    priority                  = 70
  }
}
