package connectors

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// errDescribed stops a factory at Decode when Registry.Describe captured
// its configuration struct.
var errDescribed = errors.New("connectors: configuration described, not decoded")

// FieldKind is the shape of a configuration value, in config words.
type FieldKind string

// Field kinds, from the Go type of the struct field.
const (
	KindString   FieldKind = "string"
	KindBool     FieldKind = "bool"
	KindInt      FieldKind = "int"
	KindNumber   FieldKind = "number"
	KindDuration FieldKind = "duration" // connectors.Duration: "30s", "5m", "1d"
	KindList     FieldKind = "list"     // a list of strings
	KindMapping  FieldKind = "mapping"  // a nested block or map
)

// Field is one key of a connector type's configuration block, as its
// factory declares it (the `json` tag of its config struct).
type Field struct {
	Key  string
	Kind FieldKind
	// Secret marks a connectors.Redacted value: it belongs in the
	// environment (${VAR}) or in a file named by its KEY_file twin.
	Secret bool
	// SecretFileOf is set on the KEY_file twin of a secret: the secret's key.
	SecretFileOf string
	// Default is the value the factory put in the struct before decoding
	// (its built-in default), rendered as text; "" when none.
	Default string
}

// Describe lists the keys of typ's configuration block by calling its
// factory with a Config that captures the struct the factory hands to
// Config.Decode: the connector's own declaration, not a copy of it.
// Nothing is built and nothing is validated; checking values is
// Registry.Build's job. Fields come in struct order; embedded structs are
// flattened as encoding/json does.
//
// Errors: an unknown type (listing the known ones), or a factory that
// never calls Decode.
func (r *Registry) Describe(typ string) ([]Field, error) {
	f, ok := r.factories[typ]
	if !ok {
		return nil, fmt.Errorf("unknown connector type %q (known: %s)", typ, strings.Join(r.Types(), ", "))
	}
	var got any
	cfg := Config{Name: "describe", Raw: map[string]any{}, capture: func(v any) { got = v }}
	func() {
		// A factory may use what Decode would have filled in before it
		// checks the error; a panic there still leaves got set.
		defer func() { _ = recover() }()
		_, _ = f("describe", cfg)
	}()
	if got == nil {
		return nil, fmt.Errorf("connector type %q does not decode a configuration block", typ)
	}
	rv := reflect.ValueOf(got).Elem()
	return describeStruct(rv), nil
}

var (
	redactedType = reflect.TypeFor[Redacted]()
	durationType = reflect.TypeFor[Duration]()
)

func describeStruct(v reflect.Value) []Field {
	t := v.Type()
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct {
			out = append(out, describeStruct(v.Field(i))...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if tag == "" {
			tag = sf.Name
		}
		fv := v.Field(i)
		fd := Field{Key: tag, Kind: kindOf(sf.Type)}
		switch {
		case sf.Type == redactedType:
			fd.Secret = true
		case fd.Kind == KindString && strings.HasSuffix(tag, "_file"):
			base := strings.TrimSuffix(tag, "_file")
			if bf, ok := t.FieldByNameFunc(func(n string) bool {
				f, _ := t.FieldByName(n)
				bt, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				return bt == base
			}); ok && bf.Type == redactedType {
				fd.SecretFileOf = base
			}
		}
		if !fd.Secret && !fv.IsZero() {
			fd.Default = renderDefault(fv)
		}
		out = append(out, fd)
	}
	return out
}

func kindOf(t reflect.Type) FieldKind {
	if t == durationType {
		return KindDuration
	}
	switch t.Kind() {
	case reflect.Pointer:
		return kindOf(t.Elem())
	case reflect.String:
		return KindString
	case reflect.Bool:
		return KindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return KindInt
	case reflect.Float32, reflect.Float64:
		return KindNumber
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return KindList
		}
	}
	return KindMapping
}

func renderDefault(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		return v.Interface().(Duration).Std().String()
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v.Interface())
}
