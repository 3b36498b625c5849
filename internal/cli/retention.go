package cli

import (
	"fmt"
	"strings"

	"github.com/ssehub/ssehub/internal/server"
)

// topicRuleFlag is serve's repeatable --retention-topic. A rule holds
// commas, so its variable, SSEHUB_RETENTION_TOPIC, is not a comma-separated
// list like other repeatable flags' variables: it holds one rule per line.
// A value may hold several lines on the command line too.
type topicRuleFlag []server.TopicRule

func (f *topicRuleFlag) String() string {
	rules := make([]string, len(*f))
	for i, r := range *f {
		rules[i] = r.String()
	}
	return strings.Join(rules, "\n")
}

func (f *topicRuleFlag) repeatable() {}

func (f *topicRuleFlag) Set(v string) error {
	lines := strings.Split(v, "\n")
	for _, line := range lines {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		r, err := server.ParseTopicRule(line)
		if err != nil && len(lines) > 1 {
			return fmt.Errorf("rule %q: %v", line, err)
		}
		if err != nil {
			return err
		}
		*f = append(*f, r)
	}
	return nil
}
