package main

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/filehub/filehub/openai"
	"github.com/filehub/filehub/providers"
	"github.com/filehub/filehub/wsserver"
)

// providerEnvPrefix starts every provider variable:
// FILEHUB_PROVIDER_<NAME>_<SETTING>.
const providerEnvPrefix = "FILEHUB_PROVIDER_"

// providerSettings are the <SETTING>s of a provider variable.
var providerSettings = []string{"API_KEY", "BASE_URL", "PURPOSE", "MAX_FILE_SIZE", "FILE_QUOTA"}

// providerName is what a provider's name may be: it appears in the URL
// of the push route and in the variables' names.
var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_]*$`)

// parseProviders returns the configurations of the model providers that
// environ (KEY=VALUE entries, as os.Environ) enables, sorted by name.
// FILEHUB_PROVIDER_<NAME>_API_KEY enables provider <name> (lowercased);
// _BASE_URL, _PURPOSE, _MAX_FILE_SIZE (a size such as 100MB) and
// _FILE_QUOTA override the defaults of the preset of that name (see
// openai.Presets). A provider without a preset needs a base URL and a
// purpose. A setting of a provider without an API key, or a variable with
// the prefix but no known setting, is an error rather than ignored: it is
// most likely a typo that would leave a provider off silently.
func parseProviders(environ []string) ([]openai.Config, error) {
	settings := map[string]map[string]string{} // name → setting → value
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
		if settings[name] == nil {
			settings[name] = map[string]string{}
		}
		settings[name][setting] = strings.TrimSpace(v)
	}
	var out []openai.Config
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		s := settings[name]
		env := func(setting string) string { return providerEnvPrefix + strings.ToUpper(name) + "_" + setting }
		if s["API_KEY"] == "" {
			return nil, usageErrorf("provider %s is configured but %s is not set", name, env("API_KEY"))
		}
		cfg := openai.ConfigFor(name)
		cfg.APIKey = s["API_KEY"]
		if v := s["BASE_URL"]; v != "" {
			cfg.BaseURL = v
		}
		if v := s["PURPOSE"]; v != "" {
			cfg.Purpose = v
		}
		if v, ok := s["MAX_FILE_SIZE"]; ok && v != "" {
			var b byteSize
			if err := b.Set(v); err != nil {
				return nil, usageErrorf("%s: %v", env("MAX_FILE_SIZE"), err)
			}
			cfg.MaxFileSize = int64(b)
		}
		if v, ok := s["FILE_QUOTA"]; ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, usageErrorf("%s: invalid file quota %q (want a number of files, 0 for no limit)", env("FILE_QUOTA"), v)
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

// describeProviders is the log line's view of the providers: names and
// base URLs, never keys.
func describeProviders(cfgs []openai.Config) string {
	var parts []string
	for _, c := range cfgs {
		parts = append(parts, fmt.Sprintf("%s (%s, purpose %s)", c.Name, c.BaseURL, c.Purpose))
	}
	return strings.Join(parts, ", ")
}

// wsPusher adapts the push service to the WebSocket server's
// providers.push method.
type wsPusher struct{ svc *providers.Service }

func (p wsPusher) PushToProvider(ctx context.Context, fileID, provider string) (*wsserver.PushResult, error) {
	r, err := p.svc.Push(ctx, fileID, provider)
	if err != nil {
		return nil, err
	}
	return &wsserver.PushResult{Provider: r.Provider, ProviderFileID: r.ProviderFileID, Reused: r.Reused}, nil
}
