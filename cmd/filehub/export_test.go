package main

// StatePath is statePath, for the resumable upload tests.
var StatePath = statePath
