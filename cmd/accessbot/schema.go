package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/accessbot/accessbot/access"
	"go.yaml.in/yaml/v3"
)

// The configuration schema (DESIGN.md §2 plus audit.file, audit.retention
// and http.listen). It is the one list of known keys: unknown-key errors,
// their did-you-mean suggestions and the environment overrides all come
// from it.

type nodeKind int

const (
	kindScalar nodeKind = iota // string, number or boolean
	kindList                   // list of elem
	kindObject                 // fixed keys
	kindMap                    // any keys, each value an elem
	kindAny                    // schemaless (connector blocks): anything goes
)

type node struct {
	kind   nodeKind
	fields map[string]*node // kindObject
	elem   *node            // kindList, kindMap
	// orScalar lets an object be written as a scalar instead
	// (approval: auto).
	orScalar bool
}

func scalarNode() *node               { return &node{kind: kindScalar} }
func listOf(elem *node) *node         { return &node{kind: kindList, elem: elem} }
func mapOf(elem *node) *node          { return &node{kind: kindMap, elem: elem} }
func object(f map[string]*node) *node { return &node{kind: kindObject, fields: f} }

// durationKeys are the keys of defaults that every role may override.
var durationKeys = []string{"default_duration", "max_duration", "approval_timeout", "reminder_after", "expiry_warning"}

func policyFields(extra map[string]*node) map[string]*node {
	f := map[string]*node{"reason": scalarNode()}
	for _, k := range durationKeys {
		f[k] = scalarNode()
	}
	for k, n := range extra {
		f[k] = n
	}
	return f
}

var rootSchema = object(map[string]*node{
	"slack": object(map[string]*node{
		"app_token":      scalarNode(),
		"app_token_file": scalarNode(),
		"bot_token":      scalarNode(),
		"bot_token_file": scalarNode(),
		"api_url":        scalarNode(),
		"command":        scalarNode(),
		"admins":         listOf(scalarNode()),
		"audit_channel":  scalarNode(),
	}),
	"store":    object(map[string]*node{"driver": scalarNode(), "path": scalarNode(), "dsn": scalarNode(), "dsn_file": scalarNode()}),
	"timezone": scalarNode(),
	"http":     object(map[string]*node{"listen": scalarNode()}),
	"audit":    object(map[string]*node{"file": scalarNode(), "retention": scalarNode()}),
	"defaults": object(policyFields(nil)),
	"directory": object(map[string]*node{
		"managers": object(map[string]*node{
			"static":              mapOf(scalarNode()),
			"slack_profile_field": scalarNode(),
			"source":              scalarNode(), // an identity-provider connector (okta_group, google_group, entra_group, scim_group)
		}),
		"offboarding": listOf(scalarNode()), // identity-provider connectors asked whether people are still active
	}),
	"teams": mapOf(object(map[string]*node{
		"members":         listOf(scalarNode()),
		"slack_usergroup": scalarNode(),
	})),
	"connectors": mapOf(&node{kind: kindAny}),
	"systems": mapOf(object(map[string]*node{
		"name":        scalarNode(),
		"description": scalarNode(),
		"owners":      listOf(scalarNode()),
		"channel":     scalarNode(),
		"digest":      object(map[string]*node{"schedule": scalarNode()}),
		"connector":   scalarNode(),
		"roles": mapOf(object(policyFields(map[string]*node{
			"description": scalarNode(),
			"grant":       mapOf(scalarNode()),
			"requesters":  listOf(scalarNode()),
			"approval": {kind: kindObject, orScalar: true, fields: map[string]*node{
				"steps": listOf(object(map[string]*node{
					"approvers": listOf(scalarNode()),
					"min":       scalarNode(),
				})),
				"auto_if_on_call": scalarNode(), // NAME:SCHEDULE of a pagerduty/opsgenie connector
				"distinct":        scalarNode(), // false: one person may approve several steps
			}},
			// Time windows (issue #16): when the role may be requested or
			// auto-approved, in the role's own timezone or the runbook's.
			"windows":        listOf(scalarNode()),
			"timezone":       scalarNode(),
			"outside_window": scalarNode(),
			// A required ticket reference, optionally checked in Jira or
			// Zendesk.
			"ticket": object(map[string]*node{
				"pattern": scalarNode(),
				"verify":  scalarNode(),
			}),
			// Break-glass and requests on behalf of someone (issue #16).
			"break_glass": object(map[string]*node{
				"max_duration": scalarNode(),
				"requesters":   listOf(scalarNode()),
			}),
			"on_behalf": listOf(scalarNode()),
		}))),
	})),
})

// checkShape reports unknown keys (with a did-you-mean) and values of the
// wrong shape (a list where a mapping belongs). The decoders after it skip
// ill-shaped values silently, so each mistake is reported once.
func (l *loader) checkShape(path string, v any, n *node) {
	switch n.kind {
	case kindAny:
		return
	case kindScalar:
		if !isScalar(v) {
			l.problem(path, "expected a single value, got %s", describe(v))
		}
	case kindList:
		list, ok := v.([]any)
		if !ok {
			l.problem(path, "expected a list (like [a, b]), got %s", describe(v))
			return
		}
		for i, e := range list {
			l.checkShape(fmt.Sprintf("%s[%d]", path, i), e, n.elem)
		}
	case kindMap:
		m, ok := v.(map[string]any)
		if !ok {
			l.problem(path, "expected a mapping of names to settings, got %s", describe(v))
			return
		}
		for _, k := range sortedKeys(m) {
			l.checkShape(join(path, k), m[k], n.elem)
		}
	case kindObject:
		if n.orScalar && isScalar(v) {
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			l.problem(path, "expected a mapping with keys %s, got %s", strings.Join(sortedKeys(n.fields), ", "), describe(v))
			return
		}
		for _, k := range sortedKeys(m) {
			child, known := n.fields[k]
			if !known {
				allowed := sortedKeys(n.fields)
				if s := suggest(k, allowed); s != "" {
					l.problem(join(path, k), "unknown key; did you mean %q?", s)
				} else {
					l.problem(join(path, k), "unknown key; allowed here: %s", strings.Join(allowed, ", "))
				}
				continue
			}
			l.checkShape(join(path, k), m[k], child)
		}
	}
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// describe names the shape of a value without printing it (it may be a
// secret).
func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "nothing"
	default:
		return "a number"
	}
}

type envPath struct {
	path string
	list bool
}

// envPaths lists the key paths an ACCESSBOT_ variable may override: every
// scalar or list key of the schema, with map keys (systems.NAME, teams.NAME,
// connectors.NAME …) taken from the file. Lists of mappings (approval steps)
// are not overridable.
func envPaths(n *node, path string, v any) []envPath {
	switch n.kind {
	case kindScalar:
		return []envPath{{path: path}}
	case kindList:
		if n.elem.kind == kindScalar {
			return []envPath{{path: path, list: true}}
		}
		return nil
	case kindObject:
		m, _ := v.(map[string]any)
		var out []envPath
		for _, k := range sortedKeys(n.fields) {
			out = append(out, envPaths(n.fields[k], join(path, k), m[k])...)
		}
		return out
	case kindMap:
		m, _ := v.(map[string]any)
		var out []envPath
		for _, k := range sortedKeys(m) {
			out = append(out, envPaths(n.elem, join(path, k), m[k])...)
		}
		return out
	case kindAny:
		m, ok := v.(map[string]any)
		if !ok {
			if isScalar(v) && v != nil {
				return []envPath{{path: path}}
			}
			return nil
		}
		var out []envPath
		for _, k := range sortedKeys(m) {
			out = append(out, envPaths(n, join(path, k), m[k])...)
		}
		return out
	}
	return nil
}

// suggest is the project's one "did you mean" (access.Suggest): the
// closest candidate if it is a plausible typo of s, else "".
func suggest(s string, candidates []string) string { return access.Suggest(s, candidates) }

// checkRawYAML parses data as YAML keeping the keys' case, as viper cannot,
// and reports what viper would hide: a syntax error (with its line), a
// second document (viper reads only the first) and keys that differ only
// in case (viper lower-cases keys, so the later one silently replaces the
// earlier one: `CRM:` overriding `crm:`, `MAX_DURATION: 30d` overriding
// `max_duration: 8h`). It returns false when the file cannot be parsed at
// all; duplicate keys are problems, but loading goes on to list the rest,
// with the later duplicates removed: the data returned is what the rest of
// the loading reads (data itself when nothing was removed).
func (l *loader) checkRawYAML(data []byte) ([]byte, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return data, true // empty file: reported as having no systems
		}
		l.problem("", "not valid YAML: %s", yamlMessage(err, data))
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.problem("", "not valid YAML: %s", yamlMessage(err, data))
		return nil, false
	default:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		l.problem("", "line %d: a second YAML document (after ---); the runbook is one document: remove the --- line or merge the documents", docStart(data, line))
		return nil, false
	}
	l.checkCaseDuplicates("", &doc)
	if !l.dedupped {
		return data, true
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return data, true // an alias to a dropped key, say: check the merge
	}
	return out, true
}

// docStart is the line of the "---" that starts the document whose first
// content is at line (or line itself when none is found before it).
func docStart(data []byte, line int) int {
	lines := strings.Split(string(data), "\n")
	for i := min(line, len(lines)) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "---") {
			return i + 1
		}
	}
	return line
}

// checkCaseDuplicates reports, at every level, a mapping key equal to an
// earlier one of the same mapping but for case. Aliases are not followed.
func (l *loader) checkCaseDuplicates(path string, n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			l.checkCaseDuplicates(path, c)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.checkCaseDuplicates(fmt.Sprintf("%s[%d]", path, i), c)
		}
	case yaml.MappingNode:
		first := map[string]string{}
		drop := map[int]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				continue
			}
			kp := join(path, k.Value)
			lower := strings.ToLower(k.Value)
			if prev, dup := first[lower]; dup && prev == kp {
				continue // an exact duplicate: a YAML error, reported with its line when parsed
			} else if dup {
				l.problem(kp, "duplicates %s (line %d): keys are case-insensitive, so one would silently replace the other; keep one; the later one is ignored for the other checks", prev, k.Line)
				drop[i] = true
				continue
			}
			first[lower] = kp
			l.checkCaseDuplicates(kp, val)
		}
		if len(drop) > 0 {
			// Drop the later duplicates, so that the other checks see the
			// first block as written rather than a merge of both.
			kept := make([]*yaml.Node, 0, len(n.Content))
			for i := 0; i+1 < len(n.Content); i += 2 {
				if !drop[i] {
					kept = append(kept, n.Content[i], n.Content[i+1])
				}
			}
			n.Content = kept
			l.dedupped = true
		}
	}
}
