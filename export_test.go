package crust

// ConnCount exposes the number of open connections to a peer to the tests.
func ConnCount(s *Service, id NodeID) int { return s.node.ConnCount(id) }

// PeerActors exposes the number of peer actors to the tests.
func PeerActors(s *Service) int { return s.node.PeerActors() }
