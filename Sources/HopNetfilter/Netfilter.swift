/// HopNetfilter: a value model of iptables nat and mangle rules (see RuleSet).
public enum HopNetfilter {}
