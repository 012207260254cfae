//go:build !race

package wsraw

const raceEnabled = false
