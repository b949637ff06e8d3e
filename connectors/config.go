package connectors

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accessbot/accessbot/access"
)

// ErrNoSecret is wrapped by Config.Secret when neither KEY nor KEY_file is set.
var ErrNoSecret = errors.New("secret not set")

// Config is one connector instance's configuration block, handed to its
// Factory by Registry.Build.
type Config struct {
	// Name is the instance name, the NAME in connectors.NAME.
	Name string
	// Raw is the block as loaded (YAML decoded, `${VAR}` expanded). It may
	// hold secrets: never print it.
	Raw map[string]any
	// HTTP is the shared HTTP client. Connectors send every request through
	// it so that retries, timeouts and error hygiene are the same everywhere.
	HTTP Doer
	// Clock is the time source.
	Clock access.Clock
	// State is durable storage for this instance (nil when none was lent).
	State State

	readFile func(string) ([]byte, error)
	// capture, when set, receives the struct Decode is given, and Decode
	// decodes nothing (Registry.Describe).
	capture func(any)
}

// Decode decodes Raw into v, a pointer to the connector's config struct,
// strictly, then calls v.Validate() if v has that method.
//
// Keys are matched exactly against the struct's `json` tags (nested structs
// and maps of structs too). An unknown key is an error naming its path,
// connectors.NAME.KEY, with a did-you-mean when a known key is close: a typo
// must never silently weaken a connector (DESIGN.md §2). The `type` key is
// the registry's and is skipped. Values are converted by a JSON round trip,
// so fields use ordinary Go types; use Duration for durations ("30s", "5m",
// "1d") and Redacted for secrets. Errors name the key and the expected type
// but never echo a value, since any value might be a secret.
//
// Errors returned by Validate are qualified with "connectors.NAME." unless
// they already start with "connectors."; so Validate should return errors
// that start with the key relative to the block ("url: required"), joined
// with errors.Join when there are several. Every problem is reported, not
// only the first.
func (c Config) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("connectors: Decode needs a pointer to a struct, got %T", v)
	}
	if c.capture != nil {
		c.capture(v)
		return errDescribed
	}
	raw := make(map[string]any, len(c.Raw))
	for k, val := range c.Raw {
		if k != "type" {
			raw[k] = val
		}
	}
	if errs := decodeValue("connectors."+c.Name, raw, rv.Elem()); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if vv, ok := v.(interface{ Validate() error }); ok {
		return c.qualify(vv.Validate())
	}
	return nil
}

// qualify prefixes every leaf of err (an errors.Join tree) with the
// instance's key path.
func (c Config) qualify(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, c.qualify(e))
		}
		return errors.Join(out...)
	}
	if strings.HasPrefix(err.Error(), "connectors.") {
		return err
	}
	return fmt.Errorf("connectors.%s.%w", c.Name, err)
}

// Secret returns the secret configured under key, read either from key
// itself (typically `${ENV_VAR}`) or from the file named by its `key_file`
// twin, whose contents are trimmed of surrounding white space. Setting both
// is an error; setting neither returns an error wrapping ErrNoSecret.
// Errors name the key path and, for files, the file name, never the secret.
func (c Config) Secret(key string) (string, error) {
	path := "connectors." + c.Name + "." + key
	v, hasV := c.Raw[key]
	f, hasF := c.Raw[key+"_file"]
	if hasV && v == "" {
		hasV = false
	}
	if hasF && f == "" {
		hasF = false
	}
	switch {
	case hasV && hasF:
		return "", fmt.Errorf("%s and %s_file: set only one of them", path, path)
	case hasV:
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s: must be a string", path)
		}
		return s, nil
	case hasF:
		name, ok := f.(string)
		if !ok {
			return "", fmt.Errorf("%s_file: must be a file name", path)
		}
		read := c.readFile
		if read == nil {
			return "", fmt.Errorf("%s_file: no file reader configured", path)
		}
		b, err := read(name)
		if err != nil {
			// The *PathError names the file and the OS reason only.
			return "", fmt.Errorf("%s_file: %w", path, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s_file: file %s is empty", path, name)
		}
		return s, nil
	}
	return "", fmt.Errorf("%s: required (or %s_file): %w", path, key, ErrNoSecret)
}

// Duration is a time.Duration configured as a string: "30s", "5m", "1h",
// "1d" (access.ParseDuration; must be positive).
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Or returns d as a time.Duration, or def when d is not set (zero).
func (d Duration) Or(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d.Std()
}

// UnmarshalJSON accepts only a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("must be a duration string such as 30s or 5m")
	}
	v, err := access.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Redacted is the one secret type of the program (connector blocks and
// cmd's Secret alike): a string that never prints. fmt (%v, %s, %#v),
// encoding/json, text encoders and log/slog all show "[redacted]", so a
// secret cannot leak by being logged or formatted by accident; Reveal
// returns the value for the one place that needs it. Use it for secret
// fields of config structs.
type Redacted string

// Reveal returns the secret's value.
func (r Redacted) Reveal() string { return string(r) }

// MarshalText redacts text encoders.
func (r Redacted) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// LogValue redacts log/slog.
func (r Redacted) LogValue() slog.Value { return slog.StringValue(r.String()) }

// String returns "[redacted]" (or "" when empty).
func (r Redacted) String() string {
	if r == "" {
		return ""
	}
	return "[redacted]"
}

// GoString is String, quoted, so %#v does not leak either.
func (r Redacted) GoString() string { return strconv.Quote(r.String()) }

// MarshalJSON writes the redacted form.
func (r Redacted) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// decodeValue decodes raw into v, reporting errors by key path.
func decodeValue(path string, raw any, v reflect.Value) []error {
	t := v.Type()
	isUnmarshaler := reflect.PointerTo(t).Implements(jsonUnmarshaler)
	switch {
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && raw != nil:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return decodeValue(path, raw, v.Elem())
	case t.Kind() == reflect.Struct && !isUnmarshaler:
		m, ok := stringMap(raw)
		if !ok {
			return []error{fmt.Errorf("%s: must be a mapping", path)}
		}
		fields := structFields(t)
		known := make([]string, 0, len(fields))
		for k := range fields {
			known = append(known, k)
		}
		slices.Sort(known)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var errs []error
		for _, k := range keys {
			idx, ok := fields[k]
			if !ok {
				msg := fmt.Sprintf("%s.%s: unknown key", path, k)
				if s := access.Suggest(k, known); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				errs = append(errs, errors.New(msg))
				continue
			}
			errs = append(errs, decodeValue(path+"."+k, m[k], v.FieldByIndex(idx))...)
		}
		return errs
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Struct &&
		!reflect.PointerTo(t.Elem()).Implements(jsonUnmarshaler):
		m, ok := stringMap(raw)
		if !ok {
			return []error{fmt.Errorf("%s: must be a mapping", path)}
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		var errs []error
		for k, sub := range m {
			elem := reflect.New(t.Elem()).Elem()
			e := decodeValue(path+"."+k, sub, elem)
			errs = append(errs, e...)
			if len(e) == 0 {
				v.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), elem)
			}
		}
		return errs
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return []error{fmt.Errorf("%s: unsupported value", path)}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Addr().Interface()); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			p := path
			if te.Field != "" {
				p += "." + te.Field
			}
			return []error{fmt.Errorf("%s: must be %s, not %s", p, typeName(te.Type), te.Value)}
		}
		if strings.HasPrefix(err.Error(), "json: ") {
			// Only structural messages reach here (unknown field inside a
			// slice element); they carry key names, not values.
			return []error{fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "json: "))}
		}
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	return nil
}

// typeName describes a Go type in config words.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a " + t.String()
}

// stringMap accepts the map shapes YAML decoders produce.
func stringMap(raw any) (map[string]any, bool) {
	switch m := raw.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			ks, ok := k.(string)
			if !ok {
				return nil, false
			}
			out[ks] = v
		}
		return out, true
	case nil:
		return map[string]any{}, true
	}
	return nil, false
}

// structFields maps json key names to field indexes, flattening untagged
// embedded structs the way encoding/json does.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			for k, idx := range structFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		out[tag] = []int{i}
	}
	return out
}
