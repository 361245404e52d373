// Package doclinks holds a test that the repository's Markdown documents
// point only at files inside the repository that exist: a link or a
// backticked document name that leads out of the repository (a sibling
// checkout's notes, say) or to nothing fails it. It has no code.
package doclinks
