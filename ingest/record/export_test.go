package record

// ProduceViaWriter makes recorders created from now on produce through a
// kafka.Writer rather than kafka.Client.Produce, to compare the two.
func ProduceViaWriter(on bool) { produceViaWriter = on }
