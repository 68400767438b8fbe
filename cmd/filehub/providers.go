package main

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/filehub/filehub/openai"
)

// providerEnvPrefix starts every provider variable:
// FILEHUB_PROVIDER_<NAME>_<SETTING>.
const providerEnvPrefix = "FILEHUB_PROVIDER_"

// providerSettings are the <SETTING>s of a provider variable.
var providerSettings = []string{"API_KEY", "BASE_URL", "PURPOSE", "MAX_FILE_SIZE", "FILE_QUOTA"}

// providerName is what a provider's name may be: it appears in the URL
// of the push route and in the variables' names.
var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_]*$`)

// providersTable is the config file's table of provider settings:
// [providers.<name>] with the keys of providerFileKeys.
const providersTable = "providers"

// providerFileKeys maps the keys of a [providers.<name>] table to their
// <SETTING>s: the same settings as the variables, in the file's lower case.
var providerFileKeys = map[string]string{
	"api_key": "API_KEY", "base_url": "BASE_URL", "purpose": "PURPOSE",
	"max_file_size": "MAX_FILE_SIZE", "file_quota": "FILE_QUOTA",
}

// readProviderFile returns the provider settings of the config file path
// ("" for none): name → <SETTING> → value. A key of a [providers.<name>]
// table that is not a setting is an error naming it, like a misspelt
// variable: it would leave a provider misconfigured without a word.
func readProviderFile(path string) (map[string]map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	raw, ok := doc[providersTable]
	if !ok {
		return nil, nil
	}
	tables, ok := raw.(map[string]any)
	if !ok {
		return nil, usageErrorf("config file %s: %q must be a table of [providers.<name>] tables", path, providersTable)
	}
	out := map[string]map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		where := fmt.Sprintf("config file %s: [%s.%s]", path, providersTable, name)
		if !providerName.MatchString(name) {
			return nil, usageErrorf("%s: invalid provider name (lowercase letters, digits and _)", where)
		}
		t, ok := tables[name].(map[string]any)
		if !ok {
			return nil, usageErrorf("%s must be a table", where)
		}
		out[name] = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			setting, ok := providerFileKeys[k]
			if !ok {
				return nil, usageErrorf("%s: unknown key %q (want %s)", where, k, strings.Join(slices.Sorted(maps.Keys(providerFileKeys)), ", "))
			}
			v, err := configValue(t[k])
			if err != nil {
				return nil, usageErrorf("%s: key %q: %v", where, k, err)
			}
			out[name][setting] = strings.TrimSpace(v)
		}
	}
	return out, nil
}

// providerSetting is one provider setting's value and where it was read,
// for error messages.
type providerSetting struct{ value, source string }

// parseProviders returns the configurations of the model providers that
// environ (KEY=VALUE entries, as os.Environ) and the config file's settings
// file (see readProviderFile) enable, sorted by name. For each setting the
// environment wins over the file, and the file over the preset.
// FILEHUB_PROVIDER_<NAME>_API_KEY (or api_key in [providers.<name>])
// enables provider <name> (lowercased); _BASE_URL, _PURPOSE,
// _MAX_FILE_SIZE (a size such as 100MB) and _FILE_QUOTA override the
// defaults of the preset of that name (see openai.Presets). A provider
// without a preset needs a base URL and a purpose. A setting of a provider
// without an API key, or a variable with the prefix but no known setting,
// is an error rather than ignored: it is most likely a typo that would
// leave a provider off silently.
func parseProviders(environ []string, file map[string]map[string]string) ([]openai.Config, error) {
	settings := map[string]map[string]providerSetting{} // name → setting → value
	set := func(name, setting, value, source string) {
		if settings[name] == nil {
			settings[name] = map[string]providerSetting{}
		}
		settings[name][setting] = providerSetting{value, source}
	}
	for name, s := range file {
		for setting, v := range s {
			set(name, setting, v, fmt.Sprintf("[%s.%s] %s", providersTable, name, strings.ToLower(setting)))
		}
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, providerEnvPrefix) {
			continue
		}
		rest := strings.TrimPrefix(k, providerEnvPrefix)
		var name, setting string
		for _, s := range providerSettings {
			if n, found := strings.CutSuffix(rest, "_"+s); found {
				name, setting = strings.ToLower(n), s
				break
			}
		}
		if setting == "" {
			return nil, usageErrorf("%s: unknown provider setting (want %s%s)", k, providerEnvPrefix+"<NAME>_", strings.Join(providerSettings, ", _"))
		}
		if !providerName.MatchString(name) {
			return nil, usageErrorf("%s: invalid provider name %q (letters, digits and _)", k, name)
		}
		// An empty variable is unset, as for every other setting: the
		// file's value stays.
		if v = strings.TrimSpace(v); v != "" {
			set(name, setting, v, k)
		} else if settings[name] == nil {
			settings[name] = map[string]providerSetting{} // still names the provider: its key is then missing
		}
	}
	var out []openai.Config
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		s := settings[name]
		env := func(setting string) string { return providerEnvPrefix + strings.ToUpper(name) + "_" + setting }
		if s["API_KEY"].value == "" {
			return nil, usageErrorf("provider %s is configured but %s is not set (nor api_key in [%s.%s])", name, env("API_KEY"), providersTable, name)
		}
		cfg := openai.ConfigFor(name)
		cfg.APIKey = s["API_KEY"].value
		if v := s["BASE_URL"].value; v != "" {
			cfg.BaseURL = v
		}
		if v := s["PURPOSE"].value; v != "" {
			cfg.Purpose = v
		}
		if v := s["MAX_FILE_SIZE"]; v.value != "" {
			var b byteSize
			if err := b.Set(v.value); err != nil {
				return nil, usageErrorf("%s: %v", v.source, err)
			}
			cfg.MaxFileSize = int64(b)
		}
		if v := s["FILE_QUOTA"]; v.value != "" {
			n, err := strconv.Atoi(v.value)
			if err != nil || n < 0 {
				return nil, usageErrorf("%s: invalid file quota %q (want a number of files, 0 for no limit)", v.source, v.value)
			}
			cfg.FileQuota = n
		}
		if cfg.BaseURL == "" {
			return nil, usageErrorf("provider %s has no preset: set %s", name, env("BASE_URL"))
		}
		if cfg.Purpose == "" {
			return nil, usageErrorf("provider %s has no preset: set %s", name, env("PURPOSE"))
		}
		out = append(out, cfg)
	}
	return out, nil
}
