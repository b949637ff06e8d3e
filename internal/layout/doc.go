// Package layout holds only a test: it keeps the dependency rules of the
// project's layout (DESIGN.md §5) from eroding.
package layout
