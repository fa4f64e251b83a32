package main

import (
	"encoding/json"
	"fmt"

	"github.com/relaymeter/relaymeter/meter/policy"
)

// checkPolicies builds the policy of each configured service, so that one
// the meter could not build (an unknown policy or version, refused
// parameters, an expression that does not compile) stops the start with
// its reason, rather than being priced as message meanwhile.
func checkPolicies(services []serviceConfig) error {
	for _, s := range services {
		name, version := s.Policy, s.PolicyVersion
		if name == "" {
			name = policy.MessageName
		}
		if version == 0 {
			version = 1
		}
		params, err := json.Marshal(s.Params)
		if err != nil {
			return fmt.Errorf("service %s: params: %w", s.ID, err)
		}
		if s.Params == nil {
			params = nil
		}
		if _, err := policy.New(name, version, params); err != nil {
			return fmt.Errorf("service %s: %w", s.ID, err)
		}
	}
	return nil
}
