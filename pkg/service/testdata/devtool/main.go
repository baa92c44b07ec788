// Command devtool is a Go program for the workstation fixture: built into a
// file named by a content hash, as a build cache names its binaries, it is
// named by its Go main package.
package main

func main() {}
