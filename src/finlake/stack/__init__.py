"""The local stack: real Kafka and Apicurio Registry as local processes, jars from Maven Central."""
