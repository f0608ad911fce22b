#include <string.h>

#include "sl_err.h"
#include "sl_test.h"

SL_TEST(err, every_code_has_text_and_name)
{
    for (int e = 0; e < SL_ERR__COUNT; e++) {
        CU_ASSERT_PTR_NOT_NULL(sl_strerror((sl_err)e));
        CU_ASSERT_STRING_NOT_EQUAL(sl_strerror((sl_err)e), "unknown error");
        CU_ASSERT_STRING_NOT_EQUAL(sl_err_name((sl_err)e), "unknown");
    }
    CU_ASSERT_STRING_EQUAL(sl_strerror((sl_err)9999), "unknown error");
    CU_ASSERT_STRING_EQUAL(sl_err_name(SL_ERR_CRC), "crc");
}
