package kiosk

import (
	"github.com/townlink/townlink/drivers/internal/fieldmsg"
	"sort"
	"strconv"
	"strings"
)

// idKeys are keys that name a raw citizen ID number, compared after
// lower-casing and dropping '_', '-' and spaces.
var idKeys = map[string]bool{
	"idcard": true, "idno": true, "idcardno": true, "idnumber": true, "idcardnumber": true,
	"sfz": true, "sfzh": true, "sfzhm": true, "citizenid": true, "citizenidno": true,
	"身份证": true, "身份证号": true, "身份证号码": true, "公民身份号码": true,
}

func normKey(k string) string {
	k = strings.ToLower(k)
	return strings.NewReplacer("_", "", "-", "", " ", "").Replace(k)
}

// findPersonalData walks a message and returns the path of the first field
// that carries a raw citizen ID (by key or by value) and why, or "".
// Object keys are visited in sorted order so the answer is stable.
func findPersonalData(n *fieldmsg.Node, path string) (string, string) {
	switch n.Kind {
	case fieldmsg.KindStr, fieldmsg.KindNum:
		if ContainsResidentID(n.Text) {
			return path, "holds a PRC resident ID number"
		}
	case fieldmsg.KindArr:
		for i, e := range n.Arr {
			if p, why := findPersonalData(e, path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p, why
			}
		}
	case fieldmsg.KindObj:
		keys := make([]string, 0, len(n.Obj))
		for k := range n.Obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if idKeys[normKey(k)] {
				return p, "is a raw citizen ID field"
			}
			if ContainsResidentID(k) {
				return path + ".<key>", "a key holds a PRC resident ID number"
			}
			if p, why := findPersonalData(n.Obj[k], p); p != "" {
				return p, why
			}
		}
	}
	return "", ""
}

// ContainsResidentID reports whether s contains something that is a PRC
// resident identity number (公民身份号码): a run of exactly 18 digits, or
// 17 digits followed by X, whose check character is right (GB 11643-1999,
// ISO 7064 MOD 11-2), whose region code starts with 1–8 and whose birth
// date (YYYYMMDD) is a real date from 1900 on; or a run of exactly 15
// digits (the pre-1999 number) with a region starting 1–8 and a real
// birth date 19YYMMDD. The run must stand as a token, not glued to ASCII
// letters or digits ("ID:110101199003074258", "身份证110101199003074258"
// are found; a hex hash with 18 digits in a row is not). A longer run of
// digits, or an 18-digit number with a wrong check digit, is not an ID:
// the checks keep case numbers and other long codes from being refused by
// accident (about 1 in 11 random 18-digit numbers with a plausible date
// still passes the checksum; such a value is refused).
func ContainsResidentID(s string) bool {
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		run, end := s[i:j], j
		if len(run) == 17 && j < len(s) && (s[j] == 'X' || s[j] == 'x') {
			run, end = run+"X", j+1
		}
		// Only a whole token counts: not glued to ASCII letters or digits
		// (hex hashes and serial numbers are not IDs).
		token := (i == 0 || !isAlnum(s[i-1])) && (end == len(s) || !isAlnum(s[end]))
		if token && (len(run) == 18 && validID18(run) || len(run) == 15 && validID15(run)) {
			return true
		}
		i = j
	}
	return false
}

func isAlnum(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// validID18 checks an 18-character ID (17 digits + digit or 'X').
func validID18(id string) bool {
	if id[0] < '1' || id[0] > '8' || !validDate(id[6:14]) {
		return false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(id[i]-'0') * idWeights[i]
	}
	return id[17] == "10X98765432"[sum%11]
}

func validID15(id string) bool {
	return id[0] >= '1' && id[0] <= '8' && validDate("19"+id[6:12])
}

// validDate checks YYYYMMDD, 1900–2099.
func validDate(d string) bool {
	y, _ := strconv.Atoi(d[:4])
	m, _ := strconv.Atoi(d[4:6])
	day, _ := strconv.Atoi(d[6:8])
	if y < 1900 || y > 2099 || m < 1 || m > 12 || day < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && (y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		days = 29
	}
	return day <= days
}

// isHashRef reports whether a citizen_ref looks like a hash: 32 to 128
// hex digits.
func isHashRef(s string) bool {
	if len(s) < 32 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
