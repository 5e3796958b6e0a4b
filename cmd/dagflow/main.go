// Command dagflow validates, formats, plans and applies DAG files, and runs the dagflow server.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:]))
}
