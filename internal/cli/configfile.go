package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/BurntSushi/toml"
)

// configFlag is the flag naming a command's configuration file. A command
// that defines it reads its settings from three places: the command line,
// then SSEHUB_* variables for the flags the command line left unset, then
// the file for those neither set.
const configFlag = "config"

// readConfigFile reads a TOML configuration file for the flags of fs: each
// top-level key is a flag name and its value the flag's value (a string,
// number or boolean; a list of strings for a repeatable flag). It returns
// the values by flag name, in the file's order, or a usage error naming the
// file and what is wrong, the line too when the TOML itself is malformed.
func readConfigFile(path string, fs *flag.FlagSet) (map[string][]string, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, usagef("configuration file %s does not exist", path)
		}
		return nil, nil, fmt.Errorf("reading configuration file: %w", err)
	}
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, nil, usagef("configuration file %s, line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, nil, usagef("configuration file %s: %v", path, err)
	}
	values := make(map[string][]string, len(raw))
	var order []string
	for _, key := range md.Keys() {
		if len(key) != 1 {
			continue // inside a table: refused with the table below
		}
		name := key[0]
		bad := func(format string, args ...any) error {
			return usagef("configuration file %s: %q: %s", path, name, fmt.Sprintf(format, args...))
		}
		f := fs.Lookup(name)
		switch {
		case f == nil:
			return nil, nil, bad("not a setting of this command (the keys are its flag names, without dashes)")
		case name == configFlag:
			return nil, nil, bad("a configuration file cannot name another")
		case envName(name) == "":
			return nil, nil, bad("set on the command line only")
		}
		_, repeatable := f.Value.(interface{ repeatable() })
		var vals []string
		switch v := raw[name].(type) {
		case []any:
			if !repeatable {
				return nil, nil, bad("takes one value, not a list")
			}
			for _, item := range v {
				s, ok := item.(string)
				if !ok {
					return nil, nil, bad("want a list of strings")
				}
				vals = append(vals, s)
			}
		default:
			s, ok := scalarText(v)
			if !ok {
				return nil, nil, bad("want a string, a number or true/false, not %s", tomlKind(md.Type(name)))
			}
			vals = []string{s}
		}
		values[name] = vals
		order = append(order, name)
	}
	return values, order, nil
}

// scalarText is the flag text of a TOML string, integer, float or boolean.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// tomlKind names a TOML type (MetaData.Type) for a message.
func tomlKind(t string) string {
	switch t {
	case "Hash":
		return "a table"
	case "ArrayHash":
		return "an array of tables"
	case "Datetime", "DatetimeLocal", "DateLocal", "TimeLocal":
		return "a date or time"
	}
	return t
}
