/* The MQTT publisher's configuration checks (prefix and broker address),
 * with no broker and no connection attempt. The publisher against a real
 * mosquitto broker is the integration test test_mqtt_broker.c. */
#include "rx_fixture.h"
#include "sl_mqtt.h"

SL_TEST(mqtt, config_errors)
{
    struct sl_mirror *m = fx_mirror(3);
    struct sl_mqtt *q = NULL;
    struct sl_mqtt_config cfg = { .broker = "127.0.0.1:1", .max_tags = 64 };
    static const char *const bad_prefix[] = { "a/+", "#", "/uns", "uns/" };
    for (size_t i = 0; i < sizeof bad_prefix / sizeof *bad_prefix; i++) {
        cfg.prefix = bad_prefix[i];
        CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m), SL_ERR_CONFIG);
    }
    cfg.prefix = NULL;
    static const char *const bad_broker[] = { "", ":1883", "host:", "host:70000", "::1:1883",
                                              "[::1", "host:12x" };
    for (size_t i = 0; i < sizeof bad_broker / sizeof *bad_broker; i++) {
        cfg.broker = bad_broker[i];
        CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m), SL_ERR_CONFIG);
    }
    cfg.broker = "[::1]:1883";
    CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m), SL_OK);
    CU_ASSERT_EQUAL(sl_mqtt_fd(q), -1);       /* no attempt before the first run */
    sl_mqtt_close(q);
    cfg.broker = "localhost";
    cfg.max_tags = 0;
    CU_ASSERT_EQUAL(sl_mqtt_open(&q, &cfg, m), SL_ERR_CONFIG);
    CU_ASSERT(q == NULL);
    sl_mirror_destroy(m);
}
