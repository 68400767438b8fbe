package cleanup

// KindUnitNames returns the names of the kinds that have a unit, for
// TestEveryKindHasAUnit.
func KindUnitNames() []Kind {
	var names []Kind
	for name, newKind := range kindUnits {
		if k := newKind(); k.name() != name {
			panic("kind " + string(name) + " registered under another name")
		}
		names = append(names, name)
	}
	return names
}
