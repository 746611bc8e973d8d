package scan

import "strings"

// suffixes maps the unit suffix of a contract point name (energy_kwh,
// temp_c) to the unit printed beside its value, longest first.
var suffixes = []struct{ suffix, unit string }{
	{"_mg_l", "mg/L"}, {"_kvar", "kvar"}, {"_kva", "kVA"}, {"_kwh", "kWh"}, {"_kpa", "kPa"},
	{"_deg", "°"}, {"_pct", "%"}, {"_cny", "CNY"}, {"_m3", "m³"}, {"_kw", "kW"},
	{"_hz", "Hz"}, {"_ms", "ms"}, {"_a", "A"}, {"_v", "V"}, {"_c", "°C"}, {"_s", "s"}, {"_h", "h"},
}

// UnitOf is the unit a point name carries ("energy_kwh" → "kWh"), or ""
// when it carries none (pf, valve, status_raw).
func UnitOf(point string) string {
	for _, s := range suffixes {
		if strings.HasSuffix(point, s.suffix) && len(point) > len(s.suffix) {
			return s.unit
		}
	}
	return ""
}
