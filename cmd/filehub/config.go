package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Configuration precedence, implemented once for every command:
//
//	flag > environment (FILEHUB_<FLAG>) > config file (--config) > default
//
// Only flags marked with configurable take part: settings such as --listen or
// --server belong in an environment or a file, but per-invocation switches
// such as --force or --output must not be changed behind the user's back by a
// stray FILEHUB_FORCE.

// configurableAnnotation marks a flag that reads the environment and the
// config file.
const configurableAnnotation = "filehub:configurable"

// envPrefix starts every environment variable filehub reads.
const envPrefix = "FILEHUB_"

// configurable marks the named flags of fs as configurable and appends the
// environment variable to each one's help text, so that --help documents it.
func configurable(fs *pflag.FlagSet, names ...string) {
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil {
			panic("configurable: no flag " + name) // a programming error
		}
		f.Usage += fmt.Sprintf(" (env %s)", envName(name))
		if err := fs.SetAnnotation(name, configurableAnnotation, []string{"true"}); err != nil {
			panic(err)
		}
	}
}

func isConfigurable(f *pflag.Flag) bool {
	_, ok := f.Annotations[configurableAnnotation]
	return ok
}

// envName returns the environment variable of a flag: FILEHUB_ and the flag's
// name in upper snake case ("data-dir" → "FILEHUB_DATA_DIR").
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyConfig fills the configurable flags of cmd that were not set on the
// command line, from the environment and then from the config file named by
// --config or FILEHUB_CONFIG. known is the set of flag names any filehub
// command accepts from a file: a file key outside it is an error (a typo
// must not silently leave a default in force), while a key that belongs to
// another command is ignored, so one file can serve the server and the CLI.
func applyConfig(cmd *cobra.Command, lookup func(string) (string, bool), known map[string]bool) error {
	fs := cmd.Flags()
	getenv := func(name string) string { v, _ := lookup(name); return v }

	path := configPath(cmd, getenv)
	var file map[string]any
	if path != "" {
		var err error
		if file, err = readConfigFile(path, known); err != nil {
			return err
		}
	}

	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || !isConfigurable(f) {
			return
		}
		if v, ok := lookupEnv(lookup, f, envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", envName(f.Name), v, err))
			}
			return
		}
		if raw, ok := file[f.Name]; ok {
			v, err := configValue(raw)
			if err == nil {
				err = fs.Set(f.Name, v)
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("config file %s: key %q: %v", path, f.Name, err))
			}
		}
	})
	if len(errs) > 0 {
		sort.Strings(errs)
		return usageErrorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// configPath returns the config file named by --config or FILEHUB_CONFIG,
// "" if none.
func configPath(cmd *cobra.Command, getenv func(string) string) string {
	if f := cmd.Flags().Lookup("config"); f != nil && f.Changed {
		return f.Value.String()
	}
	return getenv(envName("config"))
}

// lookupEnv treats an empty variable as unset, as most tools do: an empty
// FILEHUB_LISTEN is far more likely a templating accident than a request to
// listen nowhere. A list is the exception: FILEHUB_DENY_TYPES="" is the
// only way to say "an empty list" in the environment, so an empty variable
// that is set clears a list flag (pflag's slices read "" as no elements).
// The config file needs no such rule: deny-types = [] (or "") is explicit.
func lookupEnv(lookup func(string) (string, bool), f *pflag.Flag, name string) (string, bool) {
	v, set := lookup(name)
	if v == "" {
		return "", set && isList(f)
	}
	return v, true
}

// isList reports whether f holds a list (its value replaced by the first
// Set, from the environment or the file, and cleared by "").
func isList(f *pflag.Flag) bool {
	switch f.Value.Type() {
	case "stringSlice", "stringArray", "intSlice", "int64Slice", "uintSlice", "float64Slice", "durationSlice", "boolSlice":
		return true
	}
	return false
}

// readConfigFile reads a TOML file whose keys are flag names.
func readConfigFile(path string, known map[string]bool) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var m map[string]any
	if err := toml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// The [providers.<name>] tables are not flags; serve reads them
		// (see readProviderFile).
		if !known[k] && k != providersTable {
			return nil, fmt.Errorf("config file %s: unknown key %q", path, k)
		}
	}
	return m, nil
}

// configValue turns a TOML value into the text the flag's Set accepts.
// Arrays become comma-separated lists for list flags.
func configValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int64, float64, bool:
		return fmt.Sprint(v), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("list elements must be strings, got %T", e)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("unsupported value type %T", v)
	}
}

// configKeys returns the names of the configurable flags of cmd and all its
// descendants.
func configKeys(cmd *cobra.Command) map[string]bool {
	keys := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) {
			if isConfigurable(f) {
				keys[f.Name] = true
			}
		}
		c.LocalFlags().VisitAll(visit)
		c.PersistentFlags().VisitAll(visit)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd)
	return keys
}

// byteSize is a flag value holding a number of bytes, written with a unit
// such as 512MiB, 1GiB or 10MB (or a bare number of bytes).
type byteSize int64

func (b *byteSize) String() string {
	if *b <= 0 {
		return fmt.Sprint(int64(*b))
	}
	// IBytes prints "512 MiB"; drop the space so the default shown by
	// --help can be pasted back into the flag.
	return strings.ReplaceAll(humanize.IBytes(uint64(*b)), " ", "")
}

func (b *byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid size %q (want e.g. 512MiB, 1GiB, 10MB)", s)
	}
	if n > 1<<62 {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = byteSize(n)
	return nil
}

func (b *byteSize) Type() string { return "size" }
