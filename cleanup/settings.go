package cleanup

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/filehub/filehub"
)

// Setting keys, as stored and as accepted by UpdateSettings.
const (
	SettingTrashGrace        = "trash_grace"
	SettingBlobGrace         = "blob_grace"
	SettingUploadExpiry      = "upload_expiry"
	SettingInterval          = "interval"
	SettingMaxDeleteFraction = "max_delete_fraction"
)

// Settings are the cleanup parameters that can change at run time. Durations
// marshal as Go duration strings ("168h0m0s").
type Settings struct {
	TrashGrace        Duration `json:"trash_grace"`
	BlobGrace         Duration `json:"blob_grace"`
	UploadExpiry      Duration `json:"upload_expiry"`
	Interval          Duration `json:"interval"`
	MaxDeleteFraction float64  `json:"max_delete_fraction"`
}

// Duration is a time.Duration that marshals to JSON as a duration string.
type Duration time.Duration

// MarshalJSON encodes d like time.Duration.String.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a duration string ("24h") or integer nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration must be a string like \"24h\"")
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// SettingKeys lists the keys UpdateSettings accepts.
var SettingKeys = []string{SettingTrashGrace, SettingBlobGrace, SettingUploadExpiry, SettingInterval, SettingMaxDeleteFraction}

func (s *Service) defaultSettings() Settings {
	return Settings{
		TrashGrace:        Duration(s.cfg.TrashGrace),
		BlobGrace:         Duration(s.cfg.BlobGrace),
		UploadExpiry:      Duration(s.cfg.UploadExpiry),
		Interval:          Duration(s.cfg.Interval),
		MaxDeleteFraction: s.cfg.MaxDeleteFraction,
	}
}

// apply sets key to value in st, or returns EINVALID.
func (st *Settings) apply(key, value string) error {
	dur := func(p *Duration) error {
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return filehub.Errorf(filehub.EINVALID, "%s must be a positive duration such as 24h, not %q", key, value)
		}
		*p = Duration(d)
		return nil
	}
	switch key {
	case SettingTrashGrace:
		return dur(&st.TrashGrace)
	case SettingBlobGrace:
		return dur(&st.BlobGrace)
	case SettingUploadExpiry:
		return dur(&st.UploadExpiry)
	case SettingInterval:
		return dur(&st.Interval)
	case SettingMaxDeleteFraction:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || f <= 0 || f != f {
			return filehub.Errorf(filehub.EINVALID, "%s must be a positive number such as 0.1, not %q", key, value)
		}
		st.MaxDeleteFraction = f
		return nil
	}
	return filehub.Errorf(filehub.EINVALID, "unknown cleanup setting %q (known: %v)", key, SettingKeys)
}

// Settings returns the settings in effect: Config's defaults overridden by
// those stored with UpdateSettings. A stored value this version cannot
// parse is ignored (and logged), so a bad row never stops cleanups.
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	stored, err := s.store.Settings(ctx)
	if err != nil {
		return Settings{}, err
	}
	st := s.defaultSettings()
	for _, k := range slices.Sorted(maps.Keys(stored)) {
		if err := st.apply(k, stored[k]); err != nil {
			s.log.WarnContext(ctx, "cleanup: ignoring stored setting", "key", k, "value", stored[k], "err", err)
		}
	}
	s.current.Store(&st)
	return st, nil
}

// UpdateSettings validates kv (keys from SettingKeys, values like "24h" or
// "0.1"), stores it and audits each change with the actor of ctx
// (filehub.ActorFromContext), then returns the settings in effect. Returns
// EINVALID for an unknown key or a bad value, in which case nothing is
// stored.
func (s *Service) UpdateSettings(ctx context.Context, kv map[string]string) (Settings, error) {
	st, err := s.Settings(ctx)
	if err != nil {
		return Settings{}, err
	}
	if len(kv) == 0 {
		return st, nil
	}
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if err := st.apply(k, kv[k]); err != nil {
			return Settings{}, err
		}
	}
	if err := s.store.SetSettings(ctx, kv, filehub.ActorFromContext(ctx), s.cfg.Now()); err != nil {
		return Settings{}, err
	}
	s.current.Store(&st)
	s.log.InfoContext(ctx, "cleanup: settings changed", "actor", filehub.ActorFromContext(ctx), "settings", kv)
	return st, nil
}

// TrashGrace returns the trash grace period in effect, as last read from
// the store (at New, each run and each UpdateSettings). The file service
// calls it for each soft delete (files.Config.TrashGraceFunc), so a change
// applies to the next deletion without a restart.
func (s *Service) TrashGrace() time.Duration {
	return time.Duration(s.current.Load().TrashGrace)
}
