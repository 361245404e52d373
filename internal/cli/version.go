package cli

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/flowstone-go/flowstone/protocol"
)

func versionCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		version, revision := "(devel)", ""
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" {
				version = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					revision = s.Value
				}
			}
		}
		if e.g.json {
			return e.writeJSON(map[string]any{"version": version, "revision": revision, "protocol": protocol.Version, "go": runtime.Version()})
		}
		fmt.Fprintf(e.stdout, "fsctl %s", version)
		if revision != "" {
			fmt.Fprintf(e.stdout, " (%.12s)", revision)
		}
		fmt.Fprintf(e.stdout, ", protocol v%d, %s\n", protocol.Version, runtime.Version())
		return nil
	}
}
