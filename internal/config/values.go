package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/levee-dev/levee/internal/redact"
)

// shown is how an error quotes a value of the file: quoted, with any
// credential in it (a URL's password) masked, since a value written at the
// wrong key may be a connection string, and a long one cut at maxShown
// bytes with its length, so one problem stays one readable line.
func shown(s string) string {
	s = redact.URL(s)
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// maxShown bounds the bytes of a value an error quotes.
const maxShown = 200

// ParseDuration parses a Go duration ("250ms", "1m30s"). Negative durations
// are rejected; "0" is zero.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s is not a duration (use e.g. 250ms, 5s, 1m)", shown(s))
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative; durations must be 0 or more", shown(s))
	}
	return d, nil
}

// ParseRate parses an event rate and returns events per second. Accepted
// forms: "200/s", "5/min", "10/h", "3/250ms", "100/10s", or a bare number
// meaning per second. A rate of 0 is allowed; negative, NaN and infinite
// rates are rejected.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	num, per, hasPer := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%s is not a rate (use e.g. 200/s, 5/min)", shown(s))
	}
	if n < 0 {
		return 0, fmt.Errorf("%s is negative; rates must be 0 or more", shown(s))
	}
	if n == 0 && nonzeroDigits(num) {
		// Too small for a float64 (1e-400): not the pause 0 would be.
		return 0, fmt.Errorf("%s is below the least rate, %g/s (one per 31 years); 0 pauses", shown(s), MinRate)
	}
	if !hasPer {
		if n != 0 && n < MinRate {
			return 0, fmt.Errorf("%s is below the least rate, %g/s (one per 31 years); 0 pauses", shown(s), MinRate)
		}
		return n, nil
	}
	var unit time.Duration
	switch strings.TrimSpace(per) {
	case "s", "sec", "second":
		unit = time.Second
	case "m", "min", "minute":
		unit = time.Minute
	case "h", "hour":
		unit = time.Hour
	case "ms":
		unit = time.Millisecond
	default:
		d, err := time.ParseDuration(strings.TrimSpace(per))
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("%s is not a rate: unknown unit %s (use s, min, h or a duration)", shown(s), shown(per))
		}
		unit = d
	}
	r := n / unit.Seconds()
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return 0, fmt.Errorf("%s is not a finite rate", shown(s))
	}
	if n != 0 && r < MinRate {
		return 0, fmt.Errorf("%s is below the least rate, %g/s (one per 31 years); 0 pauses", shown(s), MinRate)
	}
	return r, nil
}

// nonzeroDigits reports whether a number's mantissa (before any exponent)
// has a digit other than 0.
func nonzeroDigits(num string) bool {
	mant, _, _ := strings.Cut(strings.ToLower(num), "e")
	return strings.ContainsAny(mant, "123456789")
}

// MinRate is the least nonzero rate a file may give, in events per
// second: one per 10^9 seconds. A smaller one (1e-400/s parses as 0)
// would be a pause in disguise.
const MinRate = 1e-9

// FormatRate formats events per second for display ("200/s", "0.5/s").
func FormatRate(r float64) string {
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

// ParsePercent parses "10%" (or a plain fraction such as "0.1") and returns
// the fraction, between 0 and 1 inclusive.
func ParsePercent(s string) (float64, error) {
	s = strings.TrimSpace(s)
	var f float64
	var err error
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err = strconv.ParseFloat(strings.TrimSpace(p), 64)
		f /= 100
	} else {
		f, err = strconv.ParseFloat(s, 64)
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a percentage (use e.g. 10%%)", shown(s))
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("%s is out of range; a percentage is between 0%% and 100%%", shown(s))
	}
	return f, nil
}
