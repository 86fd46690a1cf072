"""The MQTT control bus: the appliance's client of it (``control``) and the embedded
broker of ``mockmock up`` (``broker``)."""
