// Command inventory is the demo shop's inventory; see demo/README.md.
package main

import "github.com/telltale-dev/telltale/demo/shop"

// build and slowdown are set at link time: a bad build of the service is
// -ldflags "-X main.build=v2 -X main.slowdown=300ms".
var (
	build    = "v1"
	slowdown = ""
)

func main() { shop.Main(shop.Inventory, build, slowdown) }
