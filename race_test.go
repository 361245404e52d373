//go:build race

package flowstone_test

const raceEnabled = true
