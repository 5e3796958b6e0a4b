// Command dagflow validates, formats, plans and applies DAG files, runs the dagflow server, and
// acts on DAGs and runs through its API.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:]))
}
