package validate

import (
	"fmt"

	levconfig "github.com/levee-dev/levee/internal/config"
)

// Config is the YAML section naming a JSON Schema file per topic:
//
//	schemas:
//	  sms.send: schemas/sms.json
//	  payments: schemas/payment.json
//
// Validate compiles every schema (the same code as Load), so a broken
// schema is reported at load time with file, line and key.
type Config struct {
	Schemas map[string]string `yaml:"schemas"`
}

// Validate loads and compiles every schema and names the topic at fault.
func (c Config) Validate() error {
	for _, topic := range sortedKeys(c.Schemas) {
		if _, err := Load(map[string]string{topic: c.Schemas[topic]}); err != nil {
			return levconfig.Field("schemas."+topic, fmt.Errorf("%v", err))
		}
	}
	return nil
}

// Registry builds the Registry the section describes.
func (c Config) Registry() (*Registry, error) { return Load(c.Schemas) }
