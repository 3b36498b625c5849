package clustertest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// parseYAML parses the block-style YAML the deployment files are written
// in: documents separated by "---", mappings, sequences ("- "), plain and
// quoted scalars, flow sequences of scalars ([a, "b"]), block scalars
// ("|") and comments. Scalars stay strings. It refuses tabs, duplicate
// keys, bad indentation and anything else it does not understand, so a
// file that parses here is structurally sound; the module has no YAML
// library, and this is enough to check the files' structure and values.
func parseYAML(src string) ([]any, error) {
	var docs []any
	for n, doc := range splitDocs(src) {
		lines, err := yamlLines(doc.text, doc.first)
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			continue
		}
		v, i, err := yamlNode(lines, 0, lines[0].indent)
		if err != nil {
			return nil, err
		}
		if i != len(lines) {
			return nil, fmt.Errorf("line %d: unexpected indentation", lines[i].n)
		}
		_ = n
		docs = append(docs, v)
	}
	return docs, nil
}

type yamlDoc struct {
	text  string
	first int // line number of its first line
}

func splitDocs(src string) []yamlDoc {
	var docs []yamlDoc
	cur, first := []string{}, 1
	for i, l := range strings.Split(src, "\n") {
		if strings.TrimRight(l, " ") == "---" {
			docs = append(docs, yamlDoc{strings.Join(cur, "\n"), first})
			cur, first = nil, i+2
			continue
		}
		cur = append(cur, l)
	}
	return append(docs, yamlDoc{strings.Join(cur, "\n"), first})
}

type yamlLine struct {
	indent int
	text   string
	n      int    // line number
	block  string // for a "key: |" line, the block scalar's content
}

// yamlLines drops comments and blank lines, and folds block scalars into
// the line that introduces them.
func yamlLines(src string, first int) ([]yamlLine, error) {
	raw := strings.Split(src, "\n")
	var out []yamlLine
	for i := 0; i < len(raw); i++ {
		l := raw[i]
		if strings.Contains(l, "\t") {
			return nil, fmt.Errorf("line %d: a tab", first+i)
		}
		text := stripComment(l)
		if strings.TrimSpace(text) == "" {
			continue
		}
		indent := len(text) - len(strings.TrimLeft(text, " "))
		yl := yamlLine{indent: indent, text: strings.TrimSpace(text), n: first + i}
		if strings.HasSuffix(yl.text, ": |") || strings.HasSuffix(yl.text, ": |-") {
			var body []string
			for i+1 < len(raw) {
				next := raw[i+1]
				if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
					break
				}
				body = append(body, next)
				i++
			}
			yl.block = dedent(body)
			yl.text = strings.TrimSuffix(strings.TrimSuffix(yl.text, "-"), "|")
		}
		out = append(out, yl)
	}
	return out, nil
}

func dedent(lines []string) string {
	min := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); min < 0 || n < min {
			min = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) >= min && min >= 0 {
			l = l[min:]
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// stripComment removes a comment: a # at the start or after a space,
// outside quotes.
func stripComment(l string) string {
	var quote byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || l[i-1] == ' '):
			return l[:i]
		}
	}
	return l
}

// yamlNode parses the node starting at lines[i], indented by indent.
func yamlNode(lines []yamlLine, i, indent int) (any, int, error) {
	if isItem(lines[i].text) {
		var seq []any
		for i < len(lines) && lines[i].indent == indent && isItem(lines[i].text) {
			rest := strings.TrimSpace(strings.TrimPrefix(lines[i].text, "-"))
			if rest == "" {
				if i+1 >= len(lines) || lines[i+1].indent <= indent {
					return nil, 0, fmt.Errorf("line %d: empty sequence item", lines[i].n)
				}
				v, j, err := yamlNode(lines, i+1, lines[i+1].indent)
				if err != nil {
					return nil, 0, err
				}
				seq, i = append(seq, v), j
				continue
			}
			if _, _, isMap := splitKey(rest); isMap {
				// "- key: value": a mapping whose first line is the item's.
				lines[i] = yamlLine{indent: indent + 2, text: rest, n: lines[i].n, block: lines[i].block}
				v, j, err := yamlNode(lines, i, indent+2)
				if err != nil {
					return nil, 0, err
				}
				seq, i = append(seq, v), j
				continue
			}
			v, err := yamlScalar(rest, lines[i].n)
			if err != nil {
				return nil, 0, err
			}
			seq, i = append(seq, v), i+1
		}
		return seq, i, nil
	}
	m := map[string]any{}
	for i < len(lines) && lines[i].indent == indent {
		l := lines[i]
		if isItem(l.text) {
			return nil, 0, fmt.Errorf("line %d: a sequence item among mapping keys", l.n)
		}
		key, val, ok := splitKey(l.text)
		if !ok {
			return nil, 0, fmt.Errorf("line %d: %q is not \"key: value\"", l.n, l.text)
		}
		if _, dup := m[key]; dup {
			return nil, 0, fmt.Errorf("line %d: duplicate key %q", l.n, key)
		}
		i++
		switch {
		case l.block != "":
			m[key] = l.block
		case val != "":
			v, err := yamlScalar(val, l.n)
			if err != nil {
				return nil, 0, err
			}
			m[key] = v
		case i < len(lines) && (lines[i].indent > indent || lines[i].indent == indent && isItem(lines[i].text)):
			v, j, err := yamlNode(lines, i, lines[i].indent)
			if err != nil {
				return nil, 0, err
			}
			m[key], i = v, j
		default:
			m[key] = nil
		}
	}
	if i < len(lines) && lines[i].indent > indent {
		return nil, 0, fmt.Errorf("line %d: unexpected indentation", lines[i].n)
	}
	return m, i, nil
}

func isItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// splitKey splits "key: value" (or "key:"), the key plain or quoted.
func splitKey(text string) (key, val string, ok bool) {
	if text != "" && (text[0] == '"' || text[0] == '\'') {
		end := strings.IndexByte(text[1:], text[0])
		if end < 0 || !strings.HasPrefix(text[end+2:], ":") {
			return "", "", false
		}
		return text[1 : end+1], strings.TrimSpace(text[end+3:]), true
	}
	if strings.HasPrefix(text, "[") || strings.HasPrefix(text, "{") {
		return "", "", false
	}
	k, v, found := strings.Cut(text, ": ")
	if !found {
		if k, ok := strings.CutSuffix(text, ":"); ok && !strings.Contains(k, ": ") {
			return k, "", true
		}
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

func yamlScalar(s string, n int) (any, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		v, err := strconv.Unquote(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad double-quoted string %s", n, s)
		}
		return v, nil
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return nil, fmt.Errorf("line %d: bad single-quoted string %s", n, s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.HasPrefix(s, "["):
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("line %d: unterminated flow sequence %s", n, s)
		}
		var seq []any
		for _, item := range splitFlow(s[1 : len(s)-1]) {
			v, err := yamlScalar(strings.TrimSpace(item), n)
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
		}
		return seq, nil
	case strings.HasPrefix(s, "{"), strings.HasPrefix(s, "&"), strings.HasPrefix(s, "*"), strings.HasPrefix(s, "|"), strings.HasPrefix(s, ">"):
		return nil, fmt.Errorf("line %d: %s is beyond the YAML this check reads", n, s)
	}
	return s, nil
}

// splitFlow splits the inside of a flow sequence at commas outside quotes.
func splitFlow(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ',':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// TestParseYAML pins the parser the deployment checks rely on.
func TestParseYAML(t *testing.T) {
	docs, err := parseYAML(`# comment
a: 1 # trailing
b:
  c: "x # not a comment"
  d: ['p', "q", r]
list:
  - one
  - k: v
    k2: v2
  -
    nested: yes
same-indent:
- x
text: |
  line 1
    line 2 # kept
after: z
---
second: doc
`)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(docs)
	want := "[map[a:1 after:z b:map[c:x # not a comment d:[p q r]] list:[one map[k:v k2:v2] map[nested:yes]] same-indent:[x] text:line 1\n  line 2 # kept\n] map[second:doc]]"
	if got != want {
		t.Errorf("parsed\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{"a: 1\na: 2\n", "a:\n\tb: 1\n", "a: 1\n  b: 2\n", "a: &x 1\n", "just text\n", "a:\n  - x\n  y: 1\n"} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("parsed %q without an error", bad)
		}
	}
}

// path walks a parsed document: keys for mappings, indexes for sequences.
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}
